"""``manage.py demo``: the whole story, end to end, against a local PureClarity.

A shop user is deleted and forgotten in PureClarity once the deletion commits; then
a guest who never had an account is forgotten with the pureclarity_forget command.
Every request goes to a LocalPureClarity on 127.0.0.1 started for the run, with demo
keys, whatever PURECLARITY_GDPR says: the demo never reaches the real PureClarity
and never uses real keys.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.test import override_settings

from pureclarity_gdpr.api import is_forgotten
from pureclarity_gdpr.identifiers import mask
from pureclarity_gdpr.models import ForgetRequest, Status
from pureclarity_gdpr.testing import LocalPureClarity

DEMO_ACCESS_KEY = "AK-DEMO"
DEMO_SECRET_KEY = "SK-DEMO-FAKE"
USERNAME = "ana"
EMAIL = "ana@example.test"
GUEST_EMAIL = "guest.buyer@example.test"


@contextmanager
def local_pureclarity() -> Iterator[LocalPureClarity]:
    """A LocalPureClarity on a free loopback port, with the settings pointing at it."""
    with LocalPureClarity("127.0.0.1", 0) as server:
        # Other keys get 403, as from PureClarity: proof the demo keys were sent.
        server.expect_keys(DEMO_ACCESS_KEY, DEMO_SECRET_KEY)
        demo_settings = {
            "ACCESS_KEY": DEMO_ACCESS_KEY,
            "SECRET_KEY": DEMO_SECRET_KEY,
            "BASE_URL": server.url,
            "CONNECT_TIMEOUT": 2.0,
            "READ_TIMEOUT": 5.0,
        }
        with override_settings(PURECLARITY_GDPR=demo_settings):
            yield server


def last_request_id() -> int:
    """The newest ForgetRequest id so far, so this run's rows can be told apart."""
    newest = ForgetRequest.objects.order_by("-pk").values_list("pk", flat=True).first()
    return newest or 0


def rows_since(mark: int) -> list[ForgetRequest]:
    return list(ForgetRequest.objects.filter(pk__gt=mark).order_by("pk"))


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def format_row(cells: Sequence[str], widths: Sequence[int]) -> str:
    padded = (cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
    return "   " + "  ".join(padded).rstrip()


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = [header, *rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return [format_row(line, widths) for line in lines]


class Command(BaseCommand):
    help = (
        "Run the example end to end: migrate, delete a user, forget a guest, and "
        "show what a local PureClarity received. Exits non-zero if a request failed."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        self.verbosity: int = options["verbosity"]
        self.migrate()

        with local_pureclarity() as server:
            mark = last_request_id()
            self.step(f"2. A local PureClarity is answering on {server.url}")
            self.delete_user(server, mark)
            problems = self.forget_guest()
            rows = rows_since(mark)
            self.show_requests(rows)
            self.show_received(server)
            problems += self.find_problems(rows, server)

        self.show_admin_hint()
        if problems:
            raise CommandError("The demo failed: " + " ".join(problems))
        self.stdout.write(self.style.SUCCESS("\nEvery forget request succeeded."))

    def step(self, text: str) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING(f"\n{text}"))

    def say(self, text: str) -> None:
        self.stdout.write(f"   {text}")

    def migrate(self) -> None:
        name = settings.DATABASES["default"]["NAME"]
        self.step(f"1. Migrating the database ({connection.vendor}: {name})")
        call_command(
            "migrate",
            interactive=False,
            verbosity=max(self.verbosity - 1, 0),
            stdout=self.stdout,
        )

    def delete_user(self, server: LocalPureClarity, mark: int) -> None:
        self.step(f"3. Deleting the user {USERNAME!r} ({EMAIL})")
        user_model = get_user_model()
        user = user_model.objects.filter(username=USERNAME).first()
        if user is None:
            user = user_model.objects.create(username=USERNAME, email=EMAIL)
        identifiers = [str(user.pk), EMAIL]
        known = [identifier for identifier in identifiers if is_forgotten(identifier)]
        self.say(f"The user {USERNAME!r} has id {user.pk}.")

        with transaction.atomic():
            user.delete()
            pending = rows_since(mark)
            self.say(
                f"Inside the deleting transaction: {plural(len(pending), 'request')} "
                f"recorded, PureClarity has received "
                f"{plural(len(server.identifiers), 'request')} so far."
            )

        sent = rows_since(mark)
        outcomes = "; ".join(
            f"request {r.pk} ({r.identifier_hint}, store view {r.store_view}): "
            f"{r.status}"
            for r in sent
        )
        self.say(f"After the commit: {outcomes or 'nothing to send'}.")
        for identifier in known:
            self.say(
                f"{mask(identifier)} was forgotten by an earlier run; a deleted "
                "account is forgotten again, as it may have gathered data since."
            )

    def forget_guest(self) -> list[str]:
        """Run the command as staff would; returns what went wrong, if anything."""
        self.step(
            "4. Forgetting a guest who never had an account:\n"
            f"   manage.py pureclarity_forget {GUEST_EMAIL}"
        )
        try:
            call_command(
                "pureclarity_forget",
                GUEST_EMAIL,
                # One more than the demo's own, so each request gets its line.
                verbosity=self.verbosity + 1,
                stdout=self.stdout,
                stderr=self.stderr,
            )
        except CommandError as err:
            self.stderr.write(f"   {err}")
            return [f"pureclarity_forget failed: {err}"]
        return []

    def show_requests(self, rows: list[ForgetRequest]) -> None:
        self.step("5. Forget requests recorded by this run (the audit trail)")
        table = [
            [
                str(r.pk),
                r.identifier_hint,
                r.store_view,
                r.status,
                f"{r.acknowledged_at:%Y-%m-%d %H:%M:%S}" if r.acknowledged_at else "-",
            ]
            for r in rows
        ]
        header = ["id", "identifier", "store view", "status", "acknowledged (UTC)"]
        for line in format_table(header, table):
            self.stdout.write(line)
        self.say("Acknowledged requests keep only a hash and this masked hint.")

    def show_received(self, server: LocalPureClarity) -> None:
        received = server.received
        count = plural(len(received), "request")
        self.step(f"6. What the local PureClarity received: {count}")
        table = [
            [
                request.method,
                request.path,
                request.access_key or "-",
                mask(request.identifier or ""),
                "sent, not shown" if request.secret_key else "missing",
            ]
            for request in received
        ]
        header = ["method", "path", "AccessKey", "Identifier", "SecretKey"]
        for line in format_table(header, table):
            self.stdout.write(line)

    def find_problems(
        self, rows: list[ForgetRequest], server: LocalPureClarity
    ) -> list[str]:
        problems = [
            f"request {r.pk} ({r.identifier_hint}) is {r.status}"
            + (f": {r.last_error}" if r.last_error else ".")
            for r in rows
            if r.status != Status.SUCCEEDED
        ]
        # More may arrive than this run recorded (requests an earlier run left open
        # are sent too), never fewer.
        if len(server.identifiers) < len(rows):
            problems.append(
                f"{plural(len(rows), 'request')} recorded, but PureClarity received "
                f"{len(server.identifiers)}."
            )
        return problems

    def show_admin_hint(self) -> None:
        self.step("7. To see it all in the admin, run")
        for line in (
            "python example_project/manage.py createsuperuser",
            "python -m pureclarity_gdpr.testing --port 8765   # in another terminal",
            "python example_project/manage.py runserver",
        ):
            self.say(f"  {line}")
        self.say(
            "then open http://127.0.0.1:8000/admin/ and go to PureClarity GDPR, "
            "Forget requests."
        )
