"""After a day of forgetting, neither the secret key nor a forgotten person is kept.

A sentinel secret key and sentinel identifiers go through every path: the user
deletion receiver, the admin action and guest form, the command, failures (401,
refused connection, an answer echoing the request) and retries. Then everything a
person or a log could see is collected: every log record at DEBUG, every command
output, every admin page of the app, and a dump of the database. Neither the secret
nor any plain identifier may be found in any of it.
"""

from __future__ import annotations

import logging
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client, override_settings

from pureclarity_gdpr import delivery
from pureclarity_gdpr.models import ForgetRequest, Status
from pureclarity_gdpr.testing import LocalPureClarity

from .admin_support import (
    confirm_action,
    forget_url,
    make_user,
    needs_auth_user,
    requests_url,
    submit_identifiers,
    url,
)

pytestmark = [pytest.mark.django_db(transaction=True), needs_auth_user]

SECRET = "SK-SENTINEL-7f3a9c21"
DELETED = "deleted.sentinel+7f3a@example.test"
ACTION_ONLY = "admin.sentinel+7f3a@example.test"
GUEST = "guest.sentinel+7f3a@example.test"
COMMAND = "command.sentinel+7f3a@example.test"
PEOPLE = (DELETED, ACTION_ONLY, GUEST, COMMAND)


def sentinel_settings(server: LocalPureClarity, **extra: Any) -> dict[str, Any]:
    return {
        "ACCESS_KEY": "AK-SENTINEL",
        "SECRET_KEY": SECRET,
        "BASE_URL": server.url,
        "CONNECT_TIMEOUT": 1.0,
        "READ_TIMEOUT": 1.0,
        "RETRY_DELAY": 1,
        # One call at a time, so what the 401's pause holds back does not depend
        # on which call ends first.
        "MAX_IN_FLIGHT": 1,
        **extra,
    }


def run_command(*args: str) -> str:
    out, err = StringIO(), StringIO()
    try:
        call_command("pureclarity_forget", *args, stdout=out, stderr=err)
    except Exception as error:  # a failure's message is output too
        err.write(str(error))
    return out.getvalue() + err.getvalue()


def a_day_of_forgetting(server: LocalPureClarity, client: Client) -> list[str]:
    """Forget everyone through every path, failing first; return all output."""
    outputs = []
    staff = make_user("staff", is_staff=True, is_superuser=True)
    client.force_login(staff)

    # Failures first: keys refused, an echo of the request, nobody answering.
    deleted = make_user("deleted", email=DELETED)
    server.reply(status=401, times=1, identifier=str(deleted.pk))
    server.reply(
        status=400,
        body=f"Bad request {SECRET} for {DELETED}",
        times=1,
        identifier=DELETED,
    )
    deleted.delete()
    with override_settings(
        PURECLARITY_GDPR=sentinel_settings(server, BASE_URL="http://127.0.0.1:9")
    ):
        outputs.append(run_command(COMMAND))

    # Then everything again, with PureClarity answering. The 401 paused the store
    # view before the email was sent: its 400 comes now, and the retry after it.
    delivery.resume("default")
    outputs.append(run_command("--deliver", "-v2"))
    outputs.append(run_command("--retry-failed", "-v2"))
    user = make_user("action", email=ACTION_ONLY)
    confirm_action(client, user)
    user.delete()
    submit_identifiers(client, GUEST, confirm=True)
    outputs.append(run_command("--deliver", "-v2"))
    outputs.append(run_command("--list"))
    return outputs


def pages_of_the_app(client: Client) -> list[str]:
    urls = [requests_url(), forget_url(), f"{requests_url()}?status__exact=failed"]
    urls += [
        url(ForgetRequest, "change", pk)
        for pk in ForgetRequest.objects.values_list("pk", flat=True)
    ]
    pages = []
    for address in urls:
        response = client.get(address)
        assert response.status_code == 200, address
        pages.append(response.content.decode())
    return pages


def test_nothing_remembers_the_secret_or_the_people(
    pureclarity: LocalPureClarity, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with override_settings(PURECLARITY_GDPR=sentinel_settings(pureclarity)):
        outputs = a_day_of_forgetting(pureclarity, client)
        pages = pages_of_the_app(client)
    dump = StringIO()
    call_command("dumpdata", "pureclarity_gdpr", "admin.logentry", stdout=dump)

    statuses = set(ForgetRequest.objects.values_list("status", flat=True))
    assert statuses == {Status.SUCCEEDED}
    assert set(pureclarity.identifiers) >= set(PEOPLE)
    seen = {
        "logs": caplog.text,
        "command output": "\n".join(outputs),
        "admin pages": "\n".join(pages),
        "database": dump.getvalue(),
    }
    for where, text in seen.items():
        assert SECRET not in text, f"the secret key is in the {where}"
    for where in ("admin pages", "database"):
        for person in PEOPLE:
            assert person not in seen[where], f"{person} is in the {where}"
    for person in PEOPLE:
        assert person not in seen["logs"]
        assert person not in seen["command output"]


class _Crashing:
    def post(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the HTTP library crashed")


def test_a_debug_page_does_not_show_the_secret(
    pureclarity: LocalPureClarity, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from django.views.debug import ExceptionReporter

    from pureclarity_gdpr import client
    from pureclarity_gdpr.conf import conf

    # A crash inside the HTTP call cannot be caused from outside; stand one in.
    monkeypatch.setattr(client, "session", _Crashing)
    with override_settings(PURECLARITY_GDPR=sentinel_settings(pureclarity)):
        view = conf.store_view("default")
        try:
            client.send_forget(view, DELETED, (1.0, 1.0))
        except RuntimeError:
            report = ExceptionReporter(None, *sys.exc_info())
            html = report.get_traceback_html()
            text = report.get_traceback_text()

    assert "the HTTP library crashed" in text
    assert SECRET not in html
    assert SECRET not in text
