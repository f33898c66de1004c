"""LocalPureClarity, the loopback stand-in for PureClarity, spoken to over HTTP."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from pureclarity_gdpr.testing import SUCCESS_BODY, LocalPureClarity

REPO_ROOT = Path(__file__).resolve().parents[1]
FORGET = "/api/user/forget"
KEYS = {"AccessKey": "AK-shop-en", "SecretKey": "SK-very-secret-123"}
TIMEOUT = 2.0
# Only ever handed to the server to prove that it refuses to bind there.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104


@pytest.fixture
def server() -> Iterator[LocalPureClarity]:
    with LocalPureClarity() as running:
        yield running


def forget(
    server: LocalPureClarity,
    identifier: str = "ana@example.test",
    client: requests.Session | None = None,
    **fields: str,
) -> requests.Response:
    body = {**KEYS, "Identifier": identifier, **fields}
    poster = client.post if client is not None else requests.post
    return poster(server.url + FORGET, json=body, timeout=TIMEOUT)


def in_background(call: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    """Run ``call`` in a thread; its result or exception lands in the list."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(call())
        except Exception as err:
            outcome.append(err)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_a_valid_forget_request_gets_the_success_answer(
    server: LocalPureClarity,
) -> None:
    response = forget(server)

    assert response.status_code == 200
    assert response.text == SUCCESS_BODY
    assert response.headers["Content-Length"] == str(len(SUCCESS_BODY))
    assert response.headers["Content-Type"].startswith("text/plain")


def test_each_request_is_recorded_in_full(server: LocalPureClarity) -> None:
    forget(server, "ana@example.test")

    [request] = server.received
    assert request.method == "POST"
    assert request.path == FORGET
    assert request.headers["content-type"] == "application/json"
    assert request.json == {**KEYS, "Identifier": "ana@example.test"}
    assert request.identifier == "ana@example.test"
    assert request.access_key == "AK-shop-en"
    assert request.secret_key == "SK-very-secret-123"
    assert request.connection == 1
    assert request.received_at <= time.monotonic()
    assert server.identifiers == ["ana@example.test"]


def test_the_secret_key_stays_out_of_a_recorded_request_repr(
    server: LocalPureClarity,
) -> None:
    forget(server)

    assert "SK-very-secret-123" not in repr(server.received)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({**KEYS}, "Invalid request: Identifier is missing"),
        ({**KEYS, "Identifier": ""}, "Invalid request: Identifier is missing"),
        (
            {"AccessKey": "AK", "Identifier": "x"},
            "Invalid request: SecretKey is missing",
        ),
        ({**KEYS, "Identifier": 42}, "Invalid request: Identifier must be a string"),
        (["not", "an", "object"], "Invalid request: the body must be a JSON object"),
    ],
)
def test_an_invalid_body_gets_400_with_the_reason(
    server: LocalPureClarity, body: object, message: str
) -> None:
    response = requests.post(server.url + FORGET, json=body, timeout=TIMEOUT)

    assert response.status_code == 400
    assert response.text == message
    assert len(server.received) == 1


def test_a_body_that_is_not_json_gets_400(server: LocalPureClarity) -> None:
    response = requests.post(server.url + FORGET, data=b"Identifier=x", timeout=2)

    assert response.status_code == 400
    assert server.received[0].json is None
    assert server.received[0].body == b"Identifier=x"


def test_another_path_gets_404(server: LocalPureClarity) -> None:
    response = requests.post(server.url + "/api/user/remember", json={}, timeout=2)

    assert response.status_code == 404
    assert server.received[0].path == "/api/user/remember"


def test_another_method_gets_405(server: LocalPureClarity) -> None:
    response = requests.get(server.url + FORGET, timeout=TIMEOUT)

    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert server.identifiers == []


def test_unknown_keys_get_403_once_keys_are_expected(server: LocalPureClarity) -> None:
    server.expect_keys("AK-shop-en", "SK-very-secret-123")
    server.expect_keys("AK-shop-fr", "SK-other")

    right = forget(server)
    other_store = forget(server, AccessKey="AK-shop-fr", SecretKey="SK-other")
    wrong_secret = forget(server, SecretKey="SK-guess")
    crossed = forget(server, AccessKey="AK-shop-fr")

    assert right.status_code == other_store.status_code == 200
    assert wrong_secret.status_code == crossed.status_code == 403
    assert wrong_secret.text == "Account not found"
    assert len(server.identifiers) == 4


def test_a_rule_with_times_expires(server: LocalPureClarity) -> None:
    server.reply(503, "Service Unavailable", times=2)

    statuses = [forget(server).status_code for _ in range(3)]

    assert statuses == [503, 503, 200]


def test_a_rule_without_times_applies_forever(server: LocalPureClarity) -> None:
    server.reply(500, "<html>Internal error</html>", content_type="text/html")

    responses = [forget(server) for _ in range(3)]

    assert [response.status_code for response in responses] == [500, 500, 500]
    assert responses[0].text == "<html>Internal error</html>"
    assert responses[0].headers["Content-Type"] == "text/html"


def test_rules_can_be_limited_to_an_identifier(server: LocalPureClarity) -> None:
    server.reply(429, "slow down", identifier="bob@example.test")

    ana = forget(server, "ana@example.test")
    bob = forget(server, "bob@example.test")

    assert ana.status_code == 200
    assert bob.status_code == 429
    assert server.identifiers == ["ana@example.test", "bob@example.test"]


def test_rules_can_be_limited_to_an_access_key(server: LocalPureClarity) -> None:
    server.reply(401, "Unauthorized", access_key="AK-shop-fr")

    english = forget(server)
    french = forget(server, AccessKey="AK-shop-fr")

    assert english.status_code == 200
    assert french.status_code == 401


def test_the_first_matching_rule_answers(server: LocalPureClarity) -> None:
    server.reply(502, "first", times=1)
    server.reply(504, "second", times=1)

    answers = [forget(server).text for _ in range(3)]

    assert answers == ["first", "second", SUCCESS_BODY]


def test_a_rule_answers_whatever_the_request(server: LocalPureClarity) -> None:
    server.expect_keys("AK-other", "SK-other")
    server.reply(200, "fine by me")

    invalid = requests.get(server.url + "/nowhere", timeout=TIMEOUT)
    wrong_keys = forget(server)

    assert invalid.status_code == wrong_keys.status_code == 200
    assert invalid.text == wrong_keys.text == "fine by me"
    assert len(server.received) == 2


def test_a_rule_sends_extra_headers(server: LocalPureClarity) -> None:
    server.reply(429, "Too Many Requests", headers={"Retry-After": "7"})

    response = forget(server)

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"


def test_a_bodiless_status_keeps_the_connection_usable(
    server: LocalPureClarity,
) -> None:
    server.reply(204, times=1)

    with requests.Session() as client:
        empty = forget(server, client=client)
        after = forget(server, client=client)

    assert empty.status_code == 204
    assert empty.content == b""
    assert after.text == SUCCESS_BODY
    assert server.connections == 1


def test_a_chunked_body_is_read(server: LocalPureClarity) -> None:
    chunks = iter([b'{"AccessKey": "AK", "SecretKey": "SK", ', b'"Identifier": "c"}'])

    response = requests.post(server.url + FORGET, data=chunks, timeout=TIMEOUT)

    assert response.status_code == 200
    assert server.received[0].headers["transfer-encoding"] == "chunked"
    assert server.identifiers == ["c"]


def test_a_delay_makes_the_client_time_out(server: LocalPureClarity) -> None:
    server.reply(delay=0.5)

    with pytest.raises(requests.ReadTimeout):
        requests.post(server.url + FORGET, json={}, timeout=0.1)

    assert len(server.received) == 1


def test_a_delayed_answer_arrives_after_the_delay(server: LocalPureClarity) -> None:
    server.reply(202, "later", delay=0.15)
    started = time.monotonic()

    response = forget(server)

    assert response.status_code == 202
    assert time.monotonic() - started >= 0.15


def test_latency_slows_every_answer_and_can_change(server: LocalPureClarity) -> None:
    server.latency = 0.15
    started = time.monotonic()

    slow = forget(server)
    slow_took = time.monotonic() - started
    server.latency = 0.0
    started = time.monotonic()
    fast = forget(server)
    fast_took = time.monotonic() - started

    assert slow.status_code == fast.status_code == 200
    assert slow_took >= 0.15
    assert fast_took < 0.15


def test_latency_can_be_given_at_construction() -> None:
    with LocalPureClarity(latency=0.1) as slow:
        started = time.monotonic()

        forget(slow)

        assert time.monotonic() - started >= 0.1


def test_a_negative_latency_is_refused() -> None:
    with pytest.raises(ValueError, match="latency"):
        LocalPureClarity(latency=-1)


def test_drop_resets_the_connection(server: LocalPureClarity) -> None:
    server.reply(drop=True, times=1)

    with pytest.raises(requests.ConnectionError) as caught:
        forget(server)
    after = forget(server)

    assert "reset" in str(caught.value).lower()
    assert after.status_code == 200
    assert server.identifiers == ["ana@example.test", "ana@example.test"]


def test_a_redirect_is_answered_and_not_followed_by_itself(
    server: LocalPureClarity,
) -> None:
    server.reply(307, "moved", redirect_to="/elsewhere")

    response = requests.post(
        server.url + FORGET, json={**KEYS}, allow_redirects=False, timeout=2
    )

    assert response.status_code == 307
    assert response.headers["Location"] == "/elsewhere"
    assert [request.path for request in server.received] == [FORGET]


def test_the_redirect_target_answers_ok_and_is_recorded_when_fetched(
    server: LocalPureClarity,
) -> None:
    server.reply(302, "moved", redirect_to="/elsewhere")

    response = requests.get(server.url + "/elsewhere", timeout=TIMEOUT)

    assert response.status_code == 200
    assert response.text == "OK"
    assert [request.path for request in server.received] == ["/elsewhere"]


def test_a_client_that_follows_a_redirect_is_caught(server: LocalPureClarity) -> None:
    with LocalPureClarity() as other_host:
        server.reply(307, redirect_to=other_host.url + "/steal")

        forget(server)

        assert [request.path for request in other_host.received] == ["/steal"]
        assert other_host.received[0].secret_key == KEYS["SecretKey"]


def test_a_redirect_needs_a_redirect_status(server: LocalPureClarity) -> None:
    with pytest.raises(ValueError, match="302 or 307"):
        server.reply(redirect_to="/elsewhere")


def test_held_requests_wait_for_release(server: LocalPureClarity) -> None:
    server.reply(503, "held", hold=True, times=1)
    thread, outcome = in_background(lambda: forget(server))

    assert server.wait_for(1)
    time.sleep(0.05)
    waiting = thread.is_alive()
    server.release()
    thread.join(TIMEOUT)

    assert waiting
    [response] = outcome
    assert isinstance(response, requests.Response)
    assert response.status_code == 503
    assert response.text == "held"


def test_stop_lets_held_requests_go(server: LocalPureClarity) -> None:
    server.reply(hold=True)
    thread, outcome = in_background(lambda: forget(server))
    server.wait_for(1)
    started = time.monotonic()

    server.stop()
    thread.join(TIMEOUT)

    assert not thread.is_alive()
    assert time.monotonic() - started < 0.5
    assert len(outcome) == 1


def test_stop_cuts_a_delay_short(server: LocalPureClarity) -> None:
    server.reply(delay=10)
    thread, _ = in_background(lambda: forget(server))
    server.wait_for(1)
    started = time.monotonic()

    server.stop()
    thread.join(TIMEOUT)

    assert not thread.is_alive()
    assert time.monotonic() - started < 0.5


def test_one_session_keeps_one_connection_alive(server: LocalPureClarity) -> None:
    with requests.Session() as client:
        statuses = [
            forget(server, f"user{n}", client=client).status_code for n in range(5)
        ]

    assert statuses == [200] * 5
    assert server.connections == 1
    assert {request.connection for request in server.received} == {1}


def test_separate_clients_open_separate_connections(server: LocalPureClarity) -> None:
    forget(server)
    forget(server)

    assert server.connections == 2
    assert [request.connection for request in server.received] == [1, 2]


def test_max_concurrent_counts_requests_answered_at_once(
    server: LocalPureClarity,
) -> None:
    server.reply(hold=True, times=4)
    workers = [in_background(lambda: forget(server)) for _ in range(4)]
    server.wait_for(4)

    server.release()
    for thread, _ in workers:
        thread.join(TIMEOUT)

    assert server.max_concurrent == 4
    assert server.connections == 4
    outcomes = [outcome for _, outcome in workers]
    assert all(isinstance(response, requests.Response) for [response] in outcomes)


def test_max_concurrent_is_one_for_a_serial_client(server: LocalPureClarity) -> None:
    for _ in range(3):
        forget(server)

    assert server.max_concurrent == 1


def test_wait_for_returns_once_enough_requests_arrived(
    server: LocalPureClarity,
) -> None:
    server.reply(delay=0.05)
    thread, _ = in_background(lambda: [forget(server) for _ in range(3)])

    arrived = server.wait_for(3, timeout=TIMEOUT)
    thread.join(TIMEOUT)

    assert arrived
    assert len(server.received) >= 3


def test_wait_for_gives_up_after_the_timeout(server: LocalPureClarity) -> None:
    started = time.monotonic()

    arrived = server.wait_for(1, timeout=0.05)

    assert not arrived
    assert time.monotonic() - started < 0.5


def test_identifiers_lists_only_forget_posts(server: LocalPureClarity) -> None:
    forget(server, "ana@example.test")
    requests.post(server.url + "/other", json={"Identifier": "x"}, timeout=TIMEOUT)
    requests.put(server.url + FORGET, json={"Identifier": "y"}, timeout=TIMEOUT)
    forget(server, "42")

    assert server.identifiers == ["ana@example.test", "42"]
    assert len(server.received) == 4


def test_reset_forgets_rules_requests_keys_and_counters(
    server: LocalPureClarity,
) -> None:
    server.reply(500)
    server.expect_keys("AK-other", "SK-other")
    forget(server)

    server.reset()
    response = forget(server)

    assert response.status_code == 200
    assert server.identifiers == ["ana@example.test"]
    assert server.connections == 1


def test_url_is_loopback_without_a_trailing_slash(server: LocalPureClarity) -> None:
    url = server.url

    assert url.startswith("http://127.0.0.1:")
    assert not url.endswith("/")


def test_url_needs_a_running_server() -> None:
    idle = LocalPureClarity()

    with pytest.raises(RuntimeError):
        _ = idle.url


def test_stop_is_idempotent() -> None:
    running = LocalPureClarity().start()

    running.stop()
    running.stop()
    LocalPureClarity().stop()

    assert running.received == []


def test_a_stopped_server_refuses_connections() -> None:
    with LocalPureClarity() as running:
        url = running.url

    with pytest.raises(requests.ConnectionError):
        requests.post(url + FORGET, json={}, timeout=TIMEOUT)


@pytest.mark.parametrize("host", [ALL_INTERFACES, "::", "192.168.1.10", "example.com"])
def test_only_loopback_hosts_are_accepted(host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        LocalPureClarity(host=host)


@pytest.mark.parametrize("host", ["localhost", "127.0.0.2"])
def test_other_loopback_hosts_serve(host: str) -> None:
    with LocalPureClarity(host=host) as running:
        response = forget(running)

    assert response.status_code == 200


def test_the_command_line_prints_masked_requests() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "pureclarity_gdpr.testing", "--port", "0"],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = read_url(process)
        body = {**KEYS, "Identifier": "jane@example.test"}
        response = requests.post(url + FORGET, json=body, timeout=TIMEOUT)
        process.send_signal(signal.SIGTERM)
        output, errors = process.communicate(timeout=TIMEOUT)
    finally:
        process.kill()
        process.wait()

    assert response.status_code == 200
    assert process.returncode == 0
    assert "identifier=j***" in output
    assert "jane" not in output
    assert KEYS["SecretKey"] not in output + errors
    assert errors == ""


def read_url(process: subprocess.Popen[str]) -> str:
    """The URL the command line prints first, without waiting for ever."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        assert selector.select(timeout=5), "the server printed nothing"
    line = process.stdout.readline()
    return line.split()[-1]


def test_the_command_line_refuses_a_public_host() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pureclarity_gdpr.testing",
            "--host",
            "0.0.0.0",  # noqa: S104 - the command must refuse it
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=5,
        check=False,
    )

    assert result.returncode == 2
    assert "loopback" in result.stderr
