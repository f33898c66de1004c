"""Transient failures are retried with backoff; permanent ones fail at once."""

from __future__ import annotations

from datetime import timedelta
from email.utils import format_datetime
from types import SimpleNamespace

import pytest
from django.db import IntegrityError, transaction
from django.test import override_settings

from pureclarity_gdpr import delivery, ratelimit
from pureclarity_gdpr.models import ForgetRequest, Source, Status, StoreViewPause
from pureclarity_gdpr.testing import LocalPureClarity

from .conftest import Clock, gdpr_settings

pytestmark = pytest.mark.django_db


def record(identifier: str = "ben@example.test") -> ForgetRequest:
    recorded = delivery.record([identifier], source=Source.API)
    return recorded.created[0]


def deliver_due() -> delivery.Delivered:
    return delivery.deliver()


def test_503_503_200_is_one_request_in_three_attempts(
    pureclarity: LocalPureClarity, clock: Clock
) -> None:
    pureclarity.reply(status=503, times=2)
    request = record()

    deliver_due()
    clock.advance(3600)
    deliver_due()
    clock.advance(3600)
    deliver_due()

    request.refresh_from_db()
    assert request.status == Status.SUCCEEDED
    assert request.attempts == 3
    assert [a.status_code for a in request.attempt_log.all()] == [503, 503, 200]
    assert pureclarity.identifiers == ["ben@example.test"] * 3


def test_a_retry_waits_for_its_backoff(
    pureclarity: LocalPureClarity, clock: Clock
) -> None:
    pureclarity.reply(status=503, times=1)
    request = record()
    deliver_due()

    nothing = deliver_due()

    assert nothing.succeeded == nothing.failed == []
    request.refresh_from_db()
    assert request.next_attempt_at is not None
    wait = (request.next_attempt_at - clock.now).total_seconds()
    assert 30 <= wait <= 60


def test_backoff_grows(pureclarity: LocalPureClarity, clock: Clock) -> None:
    pureclarity.reply(status=500)
    request = record()
    waits = []

    for _ in range(4):
        deliver_due()
        request.refresh_from_db()
        assert request.next_attempt_at is not None
        waits.append((request.next_attempt_at - clock.now).total_seconds())
        clock.advance(waits[-1])

    assert waits[0] <= 60 < waits[2] <= 240 < waits[3]


@pytest.mark.parametrize("in_http_date", [False, True])
def test_retry_after_is_honoured(
    pureclarity: LocalPureClarity, clock: Clock, in_http_date: bool
) -> None:
    wanted = 70 if in_http_date else 7
    retry_after = str(wanted)
    if in_http_date:
        when = clock.now.replace(microsecond=0) + timedelta(seconds=wanted)
        retry_after = format_datetime(when, usegmt=True)
    settings = gdpr_settings(pureclarity, RETRY_DELAY=1)
    pureclarity.reply(status=429, headers={"Retry-After": retry_after}, times=1)

    with override_settings(PURECLARITY_GDPR=settings):
        request = record()
        deliver_due()
        clock.advance(wanted - 2)
        early = deliver_due()
        clock.advance(3)
        late = deliver_due()

    assert early.succeeded == []
    assert late.succeeded == [request.pk]
    assert len(pureclarity.received) == 2


def test_401_pauses_only_that_store_view(
    two_store_views: LocalPureClarity, clock: Clock
) -> None:
    two_store_views.reply(status=401, access_key="AK-UK")
    delivery.record([f"user{n}@example.test" for n in range(5)], source=Source.API)
    # One call at a time, so the pause is seen before any other call to 'uk'.
    serial = {
        "STORE_VIEWS": {
            name: {
                "ACCESS_KEY": f"AK-{name.upper()}",
                "SECRET_KEY": "SK-FAKE-0000",
                "BASE_URL": two_store_views.url,
            }
            for name in ("uk", "us")
        },
        "MAX_IN_FLIGHT": 1,
    }

    with override_settings(PURECLARITY_GDPR=serial):
        deliver_due()
        deliver_due()

    uk = ForgetRequest.objects.filter(store_view="uk")
    us = ForgetRequest.objects.filter(store_view="us")
    assert {r.status for r in us} == {Status.SUCCEEDED}
    assert {r.status for r in uk} == {Status.PENDING}
    pause = StoreViewPause.objects.get()
    assert pause.store_view == "uk"
    assert "check the access key and secret key of store view 'uk'" in pause.reason
    sent_to_uk = [r for r in two_store_views.received if r.access_key == "AK-UK"]
    assert len(sent_to_uk) == 1


def test_a_paused_store_view_waits_then_resumes(
    two_store_views: LocalPureClarity, clock: Clock
) -> None:
    two_store_views.reply(status=403, access_key="AK-UK", times=1)
    delivery.record(["ben@example.test"], source=Source.API, store_views=["uk"])
    deliver_due()

    while_paused = deliver_due()
    delivery.resume("uk")
    resumed = deliver_due()

    assert while_paused.succeeded == []
    assert len(resumed.succeeded) == 1
    assert not StoreViewPause.objects.exists()


def test_permanent_failure_is_not_retried(
    pureclarity: LocalPureClarity, clock: Clock
) -> None:
    pureclarity.reply(status=400, body="Invalid Identifier")
    request = record()

    deliver_due()
    clock.advance(86400)
    deliver_due()

    request.refresh_from_db()
    assert request.status == Status.FAILED
    assert request.attempts == 1
    assert request.next_attempt_at is None


def test_gives_up_after_max_attempts(
    pureclarity: LocalPureClarity, clock: Clock
) -> None:
    pureclarity.reply(status=502)
    with override_settings(PURECLARITY_GDPR=gdpr_settings(pureclarity, MAX_ATTEMPTS=3)):
        request = record()
        for _ in range(5):
            deliver_due()
            clock.advance(86400)

    request.refresh_from_db()
    assert request.status == Status.FAILED
    assert request.attempts == 3
    assert "Gave up after 3 attempts" in request.last_error


def test_gives_up_after_max_age(pureclarity: LocalPureClarity, clock: Clock) -> None:
    pureclarity.reply(status=502)
    request = record()
    clock.advance(8 * 86400)

    deliver_due()

    request.refresh_from_db()
    assert request.status == Status.FAILED


def test_an_abandoned_claim_is_taken_again_after_its_lease(
    pureclarity: LocalPureClarity, clock: Clock
) -> None:
    request = record()
    ForgetRequest.objects.filter(pk=request.pk).update(
        status=Status.SENDING, claim_token="dead", lease_expires_at=clock.now
    )

    before = deliver_due()
    clock.advance(1)
    after = deliver_due()

    assert before.succeeded == []
    assert after.succeeded == [request.pk]


def test_the_database_refuses_a_second_open_request(
    pureclarity: LocalPureClarity,
) -> None:
    request = record()

    with pytest.raises(IntegrityError), transaction.atomic():
        ForgetRequest.objects.create(
            identifier="ben@example.test",
            identifier_hash=request.identifier_hash,
            store_view=request.store_view,
            source=Source.API,
            open_key=request.open_key,
        )


def test_retry_makes_a_waiting_request_due_now(
    pureclarity: LocalPureClarity, clock: Clock
) -> None:
    pureclarity.reply(status=503, times=1)
    request = record()
    deliver_due()

    delivery.deliver(delivery.retry([request.pk]))

    request.refresh_from_db()
    assert request.status == Status.SUCCEEDED


def test_a_429_holds_back_the_store_view(
    pureclarity: LocalPureClarity, clock: Clock
) -> None:
    pureclarity.reply(status=429, headers={"Retry-After": "30"}, times=1)
    serial = gdpr_settings(pureclarity, MAX_IN_FLIGHT=1)
    with override_settings(PURECLARITY_GDPR=serial):
        delivery.record([f"u{n}@example.test" for n in range(4)], source=Source.API)

        first = deliver_due()
        sent_at_first = len(pureclarity.received)
        clock.advance(61)
        later = deliver_due()

    assert sent_at_first == 1
    assert first.succeeded == []
    assert len(first.deferred) == 4
    assert len(later.succeeded) == 4


def test_rate_limit_spaces_the_calls(
    pureclarity: LocalPureClarity, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []
    # Time stands still and sleeping only notes how long: each call's wait is then
    # exactly the pace's doing, whatever the load on the machine.
    frozen = SimpleNamespace(monotonic=lambda: 0.0, sleep=waits.append)
    monkeypatch.setattr(ratelimit, "time", frozen)
    monkeypatch.setattr(
        ratelimit, "_sleep", lambda seconds, wake: waits.append(seconds)
    )

    paced = gdpr_settings(pureclarity, RATE_LIMIT=20, MAX_IN_FLIGHT=4)
    with override_settings(PURECLARITY_GDPR=paced):
        delivery.record([f"u{n}@example.test" for n in range(6)], source=Source.API)
        deliver_due()

    assert len(pureclarity.received) == 6
    # The first goes at once (no sleep); the others wait a twentieth of a second
    # more each, though four threads asked at the same time.
    assert sorted(waits) == pytest.approx([0.05, 0.10, 0.15, 0.20, 0.25])


@pytest.mark.parametrize("value", ["\u00b2", "9999999999999999", "soon", "-5", ""])
def test_an_unreadable_retry_after_is_ignored(
    pureclarity: LocalPureClarity, clock: Clock, value: str
) -> None:
    pureclarity.reply(status=429, headers={"Retry-After": value}, times=1)
    request = record()

    deliver_due()

    request.refresh_from_db()
    assert request.status == Status.PENDING
    assert request.attempts == 1
    assert request.next_attempt_at is not None


def test_a_retry_after_of_a_year_is_capped(
    pureclarity: LocalPureClarity, clock: Clock
) -> None:
    pureclarity.reply(status=429, headers={"Retry-After": str(365 * 86400)}, times=1)
    serial = gdpr_settings(pureclarity, MAX_IN_FLIGHT=1)
    with override_settings(PURECLARITY_GDPR=serial):
        first = record("a@example.test")
        second = record("b@example.test")
        deliver_due()

    for request in (first, second):
        request.refresh_from_db()
        assert request.next_attempt_at is not None
        assert request.next_attempt_at - clock.now <= timedelta(hours=6)


def test_a_request_taken_over_is_not_counted_twice(
    pureclarity: LocalPureClarity, clock: Clock
) -> None:
    request = record()
    claimed = delivery._claim([request.pk], None, clock.now)
    # Another worker takes it over after the lease, and delivers it.
    ForgetRequest.objects.filter(pk=request.pk).update(claim_token="other")

    answer = delivery._send(
        delivery.conf.store_view("default"), request.identifier, None
    )
    assert answer is not None
    status = delivery._finish(claimed[0], answer, clock.now)

    assert status == Status.SENDING
    assert request.attempt_log.count() == 1
    request.refresh_from_db()
    assert request.claim_token == "other"


def test_the_lease_covers_a_paced_batch(pureclarity: LocalPureClarity) -> None:
    paced = gdpr_settings(pureclarity, RATE_LIMIT=0.5, LEASE=60)
    with override_settings(PURECLARITY_GDPR=paced):
        lease = delivery._lease_for(100)

    assert lease >= timedelta(seconds=200)


def test_the_budget_bounds_a_hung_server(pureclarity: LocalPureClarity) -> None:
    pureclarity.reply(hold=True)
    request = record()

    result = delivery.deliver([request.pk], budget=0.3)

    assert result.deferred == [request.pk]
    request.refresh_from_db()
    assert request.status == Status.SENDING


def test_an_answer_trickled_byte_by_byte_ends_within_the_read_timeout() -> None:
    import socket
    import threading

    from pureclarity_gdpr import client
    from pureclarity_gdpr.conf import StoreView

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    done = threading.Event()

    def trickle() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
            # Each byte well inside the read timeout, the whole far beyond it.
            while not done.wait(0.2):
                try:
                    conn.sendall(b"x")
                except OSError:
                    return

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    view = StoreView(
        name="default",
        access_key="AK-TRICKLE",
        secret_key="SK-TRICKLE",
        base_url=f"http://127.0.0.1:{port}",
    )
    try:
        answer = client.send_forget(view, "ana@example.test", (1.0, 1.0))
    finally:
        done.set()
        listener.close()

    # The whole body would have come after 20 s, with a 200: the call gives up on
    # it after the read timeout instead, and is tried again later.
    assert not answer.succeeded
    assert answer.transient
    assert answer.error == "PureClarity did not answer within 1 s."


@pytest.mark.parametrize("ending", ["budget", "stop"])
def test_calls_waiting_their_rate_limit_turn_are_not_made_once_the_run_ends(
    pureclarity: LocalPureClarity, ending: str
) -> None:
    import threading

    identifiers = [f"u{n}@example.test" for n in range(6)]
    paced = gdpr_settings(pureclarity, RATE_LIMIT=2, MAX_IN_FLIGHT=4)
    stop = threading.Event()
    with override_settings(PURECLARITY_GDPR=paced):
        recorded = delivery.record(identifiers, source=Source.API)
        if ending == "budget":
            result = delivery.deliver(recorded.to_deliver, budget=0.3)
        else:
            # Two calls a second: the first goes at once, the others wait.
            threading.Timer(0.3, stop.set).start()
            result = delivery.deliver(recorded.to_deliver, stop=stop)

    made = len(pureclarity.received)
    # One call went at once; those still waiting for their turn were never made,
    # and their requests are pending again, not claimed until a lease ends.
    assert made == 1
    assert len(result.succeeded) == 1
    assert sorted(result.deferred) == sorted(
        pk for pk in recorded.to_deliver if pk not in result.succeeded
    )
    statuses = ForgetRequest.objects.values_list("status", flat=True)
    assert sorted(statuses) == sorted([Status.SUCCEEDED] + [Status.PENDING] * 5)
