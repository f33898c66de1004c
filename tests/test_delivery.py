"""What PureClarity's answers make of a forget request."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import pytest
from django.core import serializers
from django.db import connection
from django.test import override_settings

from pureclarity_gdpr import delivery
from pureclarity_gdpr.client import USER_AGENT
from pureclarity_gdpr.conf import setting_problems
from pureclarity_gdpr.exceptions import InvalidIdentifier, UnknownStoreView
from pureclarity_gdpr.models import ForgetAttempt, ForgetRequest, Source, Status
from pureclarity_gdpr.testing import LocalPureClarity

from .conftest import ACCESS_KEY, SECRET_KEY, Clock, gdpr_settings

pytestmark = pytest.mark.django_db


def forget(*identifiers: str) -> list[ForgetRequest]:
    recorded = delivery.record(identifiers, source=Source.API)
    delivery.deliver(recorded.to_deliver)
    return list(ForgetRequest.objects.order_by("id"))


def test_the_call_sends_exactly_the_three_fields(pureclarity: LocalPureClarity) -> None:
    forget("ben@example.test")

    (sent,) = pureclarity.received
    assert sent.method == "POST"
    assert sent.path == "/api/user/forget"
    assert sent.json == {
        "AccessKey": ACCESS_KEY,
        "SecretKey": SECRET_KEY,
        "Identifier": "ben@example.test",
    }
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["user-agent"] == USER_AGENT
    assert USER_AGENT.startswith("pureclarity-gdpr/")


def test_success_is_recorded_with_its_attempt(pureclarity: LocalPureClarity) -> None:
    (request,) = forget("ben@example.test")

    assert request.status == Status.SUCCEEDED
    assert request.acknowledged_at is not None
    assert request.attempts == 1
    assert request.last_status_code == 200
    (attempt,) = ForgetAttempt.objects.all()
    assert attempt.succeeded
    assert attempt.excerpt == "The request was submitted successfully"


@pytest.mark.parametrize(
    ("status", "body", "succeeded"),
    [
        (200, "OK", True),
        (200, "", True),
        (200, "<html><body>Welcome</body></html>", True),
        (201, "Created", False),
        (204, "", False),
        (400, "Invalid AccessKey", False),
    ],
)
def test_only_a_200_is_success(
    pureclarity: LocalPureClarity, status: int, body: str, succeeded: bool
) -> None:
    pureclarity.reply(status=status, body=body)

    (request,) = forget("ben@example.test")

    assert (request.status == Status.SUCCEEDED) is succeeded
    assert request.last_status_code == status
    if not succeeded:
        assert request.last_error.startswith(f"PureClarity answered {status}")
        assert request.attempt_log.get().excerpt == body


def test_forbidden_says_to_check_the_keys(pureclarity: LocalPureClarity) -> None:
    pureclarity.reply(status=403, body="Account not found")

    (request,) = forget("ben@example.test")

    assert request.status == Status.PENDING
    assert "check the access key and secret key of store view 'default'" in (
        request.last_error
    )


def test_a_redirect_is_never_followed(pureclarity: LocalPureClarity) -> None:
    pureclarity.reply(status=302, redirect_to="/elsewhere")

    (request,) = forget("ben@example.test")

    assert request.status == Status.FAILED
    assert request.last_status_code == 302
    assert "redirect" in request.last_error
    assert [r.path for r in pureclarity.received] == ["/api/user/forget"]


def test_a_huge_answer_is_not_kept(pureclarity: LocalPureClarity) -> None:
    pureclarity.reply(status=500, body="x" * 2_000_000)

    (request,) = forget("ben@example.test")

    assert request.status == Status.PENDING
    assert request.next_attempt_at is not None
    assert len(request.attempt_log.get().excerpt) <= 200


def test_an_answer_echoing_the_request_is_scrubbed(
    pureclarity: LocalPureClarity,
) -> None:
    pureclarity.reply(
        status=400, body=f"Bad request for ben@example.test with key {SECRET_KEY}"
    )

    (request,) = forget("ben@example.test")

    excerpt = request.attempt_log.get().excerpt
    assert SECRET_KEY not in excerpt
    assert "ben@example.test" not in excerpt
    assert "[redacted]" in excerpt


def test_refused_connection_is_a_failure(pureclarity: LocalPureClarity) -> None:
    from django.test import override_settings

    from .conftest import gdpr_settings

    settings = gdpr_settings(pureclarity, BASE_URL="http://127.0.0.1:9")
    with override_settings(PURECLARITY_GDPR=settings):
        (request,) = forget("ben@example.test")

    assert request.status == Status.PENDING
    assert request.next_attempt_at is not None
    assert request.last_status_code is None
    assert "connection" in request.last_error


def test_retry_delivers_a_failed_request(pureclarity: LocalPureClarity) -> None:
    pureclarity.reply(status=400, times=1)
    (request,) = forget("ben@example.test")
    assert request.status == Status.FAILED

    delivery.deliver(delivery.retry([request.pk]))

    request.refresh_from_db()
    assert request.status == Status.SUCCEEDED
    assert request.attempts == 2
    assert pureclarity.identifiers == ["ben@example.test", "ben@example.test"]


def test_bad_identifier_writes_nothing(pureclarity: LocalPureClarity) -> None:
    with pytest.raises(InvalidIdentifier, match="empty"):
        delivery.record(["ok@example.test", "  "], source=Source.API)

    assert ForgetRequest.objects.count() == 0


@pytest.mark.parametrize(
    ("identifier", "message"),
    [("a" * 256, "256 characters"), ("bell\x07@example.test", "control"), (42, "text")],
)
def test_identifiers_are_validated(
    pureclarity: LocalPureClarity, identifier: object, message: str
) -> None:
    with pytest.raises(InvalidIdentifier, match=message):
        delivery.record([identifier], source=Source.API)  # type: ignore[list-item]


def test_unknown_store_view_is_refused(two_store_views: LocalPureClarity) -> None:
    with pytest.raises(UnknownStoreView, match=r"store views are: uk, us\."):
        delivery.record(["ben@example.test"], source=Source.API, store_views=["fr"])

    assert ForgetRequest.objects.count() == 0


def test_identifier_is_stripped(pureclarity: LocalPureClarity) -> None:
    forget("  ben@example.test\n")

    assert pureclarity.identifiers == ["ben@example.test"]


def test_an_open_request_is_not_duplicated(pureclarity: LocalPureClarity) -> None:
    first = delivery.record(["ben@example.test"], source=Source.API)
    second = delivery.record(["ben@example.test"], source=Source.COMMAND)

    assert len(first.created) == 1
    assert second.created == []
    assert second.to_deliver == first.to_deliver
    assert ForgetRequest.objects.count() == 1


def test_already_forgotten_is_not_sent_again(pureclarity: LocalPureClarity) -> None:
    forget("ben@example.test")

    again = delivery.record(["ben@example.test"], source=Source.API)
    forced = delivery.record(["ben@example.test"], source=Source.API, force=True)

    assert len(again.already_forgotten) == 1
    assert again.to_deliver == []
    assert len(forced.created) == 1


def test_parallel_delivery_of_many(pureclarity: LocalPureClarity) -> None:
    identifiers = [f"user{n}@example.test" for n in range(20)]

    requests = forget(*identifiers)

    assert {r.status for r in requests} == {Status.SUCCEEDED}
    assert sorted(pureclarity.identifiers) == sorted(identifiers)


def test_budget_leaves_the_rest_pending(pureclarity: LocalPureClarity) -> None:
    from django.test import override_settings

    from .conftest import gdpr_settings

    pureclarity.latency = 0.3
    recorded = delivery.record(
        [f"user{n}@example.test" for n in range(6)], source=Source.API
    )
    with override_settings(
        PURECLARITY_GDPR=gdpr_settings(pureclarity, MAX_IN_FLIGHT=2)
    ):
        result = delivery.deliver(recorded.to_deliver, budget=0.2)

    # Two calls were in flight when the budget ran out: they stay claimed for a
    # worker to send again after their lease; the four never started are pending.
    assert result.succeeded == []
    assert len(result.deferred) == 6
    assert ForgetRequest.objects.filter(status=Status.PENDING).count() == 4
    assert ForgetRequest.objects.filter(status=Status.SENDING).count() == 2


def test_calls_go_on_while_an_outcome_is_being_written(
    pureclarity: LocalPureClarity, monkeypatch: pytest.MonkeyPatch
) -> None:
    identifiers = ["a@example.test", "b@example.test", "c@example.test"]
    recorded = delivery.record(identifiers, source=Source.API)
    write_outcomes = delivery._finish_all
    third_call_during_first_write: list[bool] = []

    def slow_writer(outcomes: list[delivery.Outcome]) -> list[Status]:
        if not third_call_during_first_write:
            # One call in flight at a time: the third reaches the server during
            # this write only if the end of the second started it.
            third_call_during_first_write.append(pureclarity.wait_for(3, timeout=5))
        return write_outcomes(outcomes)

    monkeypatch.setattr(delivery, "_finish_all", slow_writer)
    with override_settings(
        PURECLARITY_GDPR=gdpr_settings(pureclarity, MAX_IN_FLIGHT=1)
    ):
        result = delivery.deliver(recorded.to_deliver)

    assert third_call_during_first_write == [True]
    assert sorted(result.succeeded) == sorted(recorded.to_deliver)


def test_a_failed_write_ends_the_run_and_starts_no_more_calls(
    pureclarity: LocalPureClarity, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.db import OperationalError

    pureclarity.latency = 0.02
    recorded = delivery.record(
        [f"user{n}@example.test" for n in range(30)], source=Source.API
    )

    def failing_writer(outcomes: list[delivery.Outcome]) -> list[Status]:
        raise OperationalError("deadlock")

    monkeypatch.setattr(delivery, "_finish_all", failing_writer)
    with (
        override_settings(PURECLARITY_GDPR=gdpr_settings(pureclarity, MAX_IN_FLIGHT=2)),
        pytest.raises(OperationalError),
    ):
        delivery.deliver(recorded.to_deliver)
    sent = len(pureclarity.received)
    # Were calls still started, all 30 would arrive well within this.
    pureclarity.wait_for(30, timeout=0.5)
    made = len(pureclarity.received)

    # Nobody is left to record a call started now: only the two in flight may
    # still arrive, and the requests never sent are pending again rather than
    # claimed until their lease ends.
    assert made <= sent + 2 < 30
    pending = ForgetRequest.objects.filter(status=Status.PENDING).count()
    assert pending >= 30 - made


def test_secret_never_reaches_logs_or_rows(
    pureclarity: LocalPureClarity, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    pureclarity.reply(status=401, times=1)
    forget("ben@example.test")
    from django.test import override_settings

    from .conftest import gdpr_settings

    with override_settings(
        PURECLARITY_GDPR=gdpr_settings(pureclarity, BASE_URL="http://127.0.0.1:9")
    ):
        forget("ann@example.test")

    dump = serializers.serialize(
        "json", [*ForgetRequest.objects.all(), *ForgetAttempt.objects.all()]
    )
    assert SECRET_KEY not in caplog.text
    assert SECRET_KEY not in dump
    assert "ben@example.test" not in caplog.text


def test_no_store_view_refuses_to_record(pureclarity: LocalPureClarity) -> None:
    from django.test import override_settings

    with override_settings(PURECLARITY_GDPR={}), pytest.raises(Exception, match="E001"):
        delivery.record(["ben@example.test"], source=Source.API)

    assert ForgetRequest.objects.count() == 0


def test_a_request_recorded_meanwhile_is_reused(pureclarity: LocalPureClarity) -> None:
    first = delivery.record(["ben@example.test"], source=Source.API).created[0]
    racing = ForgetRequest(
        identifier="ben@example.test",
        identifier_hash=first.identifier_hash,
        store_view=first.store_view,
        source=Source.COMMAND,
        open_key=first.open_key,
    )
    result = delivery.Recorded()

    created = delivery._insert([racing], result)

    assert created == []
    assert result.already_open == [first]
    assert ForgetRequest.objects.count() == 1


# A cool-off (DELAY) before the first attempt, and cancelling pending requests.


def record_with_delay(server: LocalPureClarity, delay: float, identifier: str) -> int:
    with override_settings(PURECLARITY_GDPR=gdpr_settings(server, DELAY=delay)):
        (pk,) = delivery.record([identifier], source=Source.API).to_deliver
    return pk


def test_a_delay_holds_a_new_request_back_until_it_has_passed(
    pureclarity: LocalPureClarity, clock: Clock
) -> None:
    pk = record_with_delay(pureclarity, 600, "ben@example.test")

    early = delivery.deliver()
    clock.advance(599)
    still_early = delivery.deliver()
    clock.advance(1)
    on_time = delivery.deliver()

    assert early.succeeded == still_early.succeeded == []
    assert on_time.succeeded == [pk]
    assert pureclarity.identifiers == ["ben@example.test"]


def test_a_delayed_request_is_due_at_its_end(
    pureclarity: LocalPureClarity, clock: Clock
) -> None:
    pk = record_with_delay(pureclarity, 3600, "ben@example.test")

    request = ForgetRequest.objects.get(pk=pk)

    assert request.status == Status.PENDING
    assert request.next_attempt_at == clock.now + timedelta(hours=1)


def test_without_a_delay_a_new_request_is_due_at_once(
    pureclarity: LocalPureClarity,
) -> None:
    recorded = delivery.record(["ben@example.test"], source=Source.API)

    assert recorded.created[0].next_attempt_at is None


@pytest.mark.parametrize(
    ("value", "problem"), [(0, False), (0.5, False), (-1, True), ("1h", True)]
)
def test_the_delay_may_be_zero_but_not_negative(
    pureclarity: LocalPureClarity, value: object, problem: bool
) -> None:
    with override_settings(PURECLARITY_GDPR=gdpr_settings(pureclarity, DELAY=value)):
        problems = [p for p in setting_problems() if "DELAY" in p.msg]

    assert [p.id for p in problems] == (["pureclarity_gdpr.E008"] if problem else [])


def test_cancel_stops_a_pending_request_and_wipes_its_identifier(
    pureclarity: LocalPureClarity, clock: Clock
) -> None:
    pk = record_with_delay(pureclarity, 600, "ben@example.test")

    cancelled = delivery.cancel([pk])
    clock.advance(600)
    delivery.deliver()

    assert cancelled == [pk]
    request = ForgetRequest.objects.get(pk=pk)
    assert (request.status, request.identifier, request.open_key) == (
        Status.CANCELLED,
        "",
        None,
    )
    assert request.identifier_hash
    assert pureclarity.received == []


def test_a_cancelled_identifier_can_be_asked_for_again(
    pureclarity: LocalPureClarity,
) -> None:
    (first,) = delivery.record(["ben@example.test"], source=Source.API).to_deliver
    delivery.cancel([first])

    again = delivery.record(["ben@example.test"], source=Source.API)

    assert len(again.created) == 1
    assert again.created[0].pk != first


def test_cancel_leaves_requests_that_are_not_pending_alone(
    pureclarity: LocalPureClarity,
) -> None:
    pureclarity.reply(status=400, identifier="bad@example.test")
    done, failed = (r.pk for r in forget("ben@example.test", "bad@example.test"))
    (attention,) = delivery.record_needs_attention(
        store_views=None, source=Source.API, reason="No identifier."
    )
    chosen = [done, failed, attention.pk]

    cancelled = delivery.cancel(chosen)

    assert cancelled == []
    statuses = [ForgetRequest.objects.get(pk=pk).status for pk in chosen]
    assert statuses == [Status.SUCCEEDED, Status.FAILED, Status.NEEDS_ATTENTION]


@pytest.mark.django_db(transaction=True)
def test_cancel_leaves_a_request_being_sent_alone(
    pureclarity: LocalPureClarity,
) -> None:
    pureclarity.reply(hold=True, times=1)
    (pk,) = delivery.record(["ben@example.test"], source=Source.API).to_deliver
    seen: list[list[int]] = []

    def cancel_while_held() -> None:
        pureclarity.wait_for(1)
        seen.append(delivery.cancel([pk]))
        connection.close()
        pureclarity.release()

    thread = threading.Thread(target=cancel_while_held)
    thread.start()
    result = delivery.deliver([pk])
    thread.join()

    assert seen == [[]]
    assert result.succeeded == [pk]
    assert ForgetRequest.objects.get(pk=pk).status == Status.SUCCEEDED


def test_retry_and_resume_leave_a_cool_off_alone(
    pureclarity: LocalPureClarity, clock: object
) -> None:
    pk = record_with_delay(pureclarity, 600, "ben@example.test")

    retried = delivery.retry([pk])
    delivery.resume("default")
    sent_early = delivery.deliver()

    assert retried == []
    assert sent_early.succeeded == []


def test_other_addresses_in_an_answer_are_scrubbed(
    pureclarity: LocalPureClarity,
) -> None:
    pureclarity.reply(status=400, body="Conflicts with someone.else@example.test")

    (request,) = forget("ben@example.test")

    assert request.attempt_log.get().excerpt == "Conflicts with [email]"


def test_outcomes_are_written_in_open_key_order_whatever_order_calls_end(
    pureclarity: LocalPureClarity,
) -> None:
    import re

    from django.test.utils import CaptureQueriesContext

    recorded = delivery.record(
        [f"user{n}@example.test" for n in range(5)], source=Source.API
    )
    claimed = delivery._claim(recorded.to_deliver, None, delivery.clock())
    answer = delivery._send(delivery.conf.store_view("default"), "x@example.test", None)
    assert answer is not None
    by_key = sorted(claimed, key=lambda r: r.open_key or "")
    # Calls that ended in the reverse of the order deletions lock rows in.
    ended = list(reversed(by_key))

    with CaptureQueriesContext(connection) as queries:
        statuses = delivery._finish_all([(r, answer, delivery.clock()) for r in ended])

    updated = [
        int(match.group(1))
        for q in queries.captured_queries
        if q["sql"].startswith("UPDATE")
        for match in [re.search(r"id[`\"]? = (\d+)", q["sql"])]
        if match
    ]
    assert updated == [r.pk for r in by_key]
    assert statuses == [Status.SUCCEEDED] * 5
