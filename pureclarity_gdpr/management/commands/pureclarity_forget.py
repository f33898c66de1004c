"""``manage.py pureclarity_forget``: forget people in PureClarity from a shell or cron.

Identifiers come from the arguments and from a file or standard input; every one is
validated before anything is written, so bad input leaves no half-recorded batch.
Requests are recorded like any other forget request and delivered at once, in one
concurrent run. Output shows identifiers masked, never the keys.
"""

from __future__ import annotations

import codecs
import os
import sys
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import IO, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.db.models import Q, QuerySet

from pureclarity_gdpr import delivery
from pureclarity_gdpr.conf import SETTING_NAME, conf
from pureclarity_gdpr.exceptions import ConfigurationError, InvalidIdentifier
from pureclarity_gdpr.identifiers import clean
from pureclarity_gdpr.models import ForgetRequest, Source, Status, StoreViewPause

STDIN = "-"
SUCCEEDED = "succeeded"
FAILED = "failed"
STILL_PENDING = "still pending"
NOTHING_TO_DO = (
    "Give identifiers to forget, as arguments or with --file PATH (--file - reads "
    "standard input), or use --retry-failed or --deliver to send requests already "
    "recorded. See --help."
)


class _Escaping:
    """A text stream that writes what its encoding cannot carry as backslash escapes.

    Masked identifiers keep their first characters, which may be non-ASCII; on a
    terminal or pipe set to ASCII, writing them must not crash the command after
    requests were sent.
    """

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        encoding = getattr(self._stream, "encoding", None)
        if encoding:
            text = text.encode(encoding, "backslashreplace").decode(encoding)
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun if count == 1 else noun + 's'}"


def _from_argv(value: str) -> str:
    """An argument decoded as UTF-8, whatever the locale made of its bytes.

    Python decodes arguments with the locale's encoding; under a C or Latin-1
    locale a UTF-8 identifier arrives as escapes or mojibake. Encoding it back
    gives the bytes the shell passed, and identifiers are UTF-8.
    """
    try:
        return os.fsencode(value).decode("utf-8")
    except UnicodeError:
        return value


def _lines(data: bytes | str) -> Iterator[str | None]:
    """The lines of a file, each decoded as UTF-8, or None where it is not UTF-8."""
    # Only "\n" ends a line: str.splitlines() would also split on control
    # characters, hiding them from validation instead of reporting them.
    if isinstance(data, str):
        yield from data.removeprefix("\ufeff").split("\n")
        return

    # A byte order mark (from Windows editors) is not part of the first identifier.
    for raw in data.removeprefix(codecs.BOM_UTF8).split(b"\n"):
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            yield None


def _in_store_views(
    requests: QuerySet[ForgetRequest], store_views: list[str] | None
) -> QuerySet[ForgetRequest]:
    if store_views is None:
        return requests
    return requests.filter(store_view__in=store_views)


def _retryable(store_views: list[str] | None) -> QuerySet[ForgetRequest]:
    """Failed requests, and pending ones waiting out the backoff after a failure."""
    retryable = Q(status=Status.FAILED) | Q(
        status=Status.PENDING, next_attempt_at__isnull=False
    )
    requests = ForgetRequest.objects.filter(retryable)
    return _in_store_views(requests, store_views).order_by("created_at", "id")


def _due(store_views: list[str] | None) -> QuerySet[ForgetRequest]:
    """Requests that delivery.deliver() would claim now: due, or lease run out."""
    now = delivery.clock()
    due = Q(status=Status.PENDING) & (
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )
    abandoned = Q(status=Status.SENDING, lease_expires_at__lt=now)
    paused = StoreViewPause.objects.filter(paused_until__gt=now).values("store_view")
    requests = ForgetRequest.objects.filter(due | abandoned).exclude(
        store_view__in=paused
    )
    return _in_store_views(requests, store_views).order_by("created_at", "id")


def _pauses() -> dict[str, StoreViewPause]:
    pauses = StoreViewPause.objects.filter(paused_until__gt=delivery.clock())
    return {pause.store_view: pause for pause in pauses}


def _when(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _describe(request: ForgetRequest) -> str:
    return (
        f"{request.identifier_hint or '?'} in store view '{request.store_view}' "
        f"(request {request.pk})"
    )


def _clean(value: str | None) -> str:
    if value is None:
        raise InvalidIdentifier("This line is not valid UTF-8; save the file as UTF-8.")
    return clean(value)


def _outcome(
    request: ForgetRequest,
    delivered: delivery.Delivered,
    pauses: dict[str, StoreViewPause],
) -> tuple[str, str]:
    """What became of a request in this run: its kind and how to tell it."""
    if request.pk in delivered.succeeded:
        return SUCCEEDED, "succeeded."
    if request.status == Status.FAILED:
        return FAILED, f"failed: {request.last_error}"

    pause = pauses.get(request.store_view)
    if pause is not None:
        return FAILED, (
            "not sent, deliveries to this store view are paused until "
            f"{_when(pause.paused_until)}: {pause.reason}"
        )
    if request.pk in delivered.deferred and request.next_attempt_at is not None:
        return FAILED, (
            f"not delivered, to be tried again at {_when(request.next_attempt_at)}: "
            f"{request.last_error}"
        )
    return STILL_PENDING, "still pending (not due yet, or being sent elsewhere)."


class Command(BaseCommand):
    help = (
        "Forget people in PureClarity: record a forget request for each identifier "
        "in each chosen store view and deliver it at once; or retry failed requests "
        "and deliver pending ones. Identifiers are shown masked; characters the "
        "output's encoding cannot show are written as backslash escapes (\\xeb) "
        "rather than failing. -v0 prints only errors, -v1 a summary, -v2 also a "
        "line per request. Requests not delivered are listed on stderr and make "
        "the command exit non-zero."
    )
    # Lets tests and callers of call_command() pass their own standard input.
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "identifiers",
            nargs="*",
            metavar="IDENTIFIER",
            help=(
                "An identifier to forget, exactly as the site sends it to "
                "PureClarity: a user id or an email address."
            ),
        )
        parser.add_argument(
            "--file",
            metavar="PATH",
            help=(
                "Also forget the identifiers in PATH ('-' for standard input), one "
                "per line, read as UTF-8 whatever the locale. Surrounding whitespace "
                "is stripped; blank lines and repeats are skipped. If any line is "
                "bad, every bad line is reported and nothing is recorded."
            ),
        )
        parser.add_argument(
            "--store-view",
            action="append",
            dest="store_views",
            metavar="NAME",
            help=(
                "Only this store view; repeat for several. Default: every store "
                f"view configured in {SETTING_NAME}. Also limits --retry-failed "
                "and --deliver."
            ),
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help=(
                "Send identifiers again in store views where they were already "
                "forgotten (by default they are skipped and counted)."
            ),
        )
        parser.add_argument(
            "--retry-failed",
            action="store_true",
            help=(
                "Deliver now every failed request, and every one waiting to be "
                "tried again after a failure; use once the cause is fixed. A store "
                "view paused because PureClarity refused its keys stays paused."
            ),
        )
        parser.add_argument(
            "--deliver",
            action="store_true",
            help=(
                "Deliver every pending request that is due, for example from cron "
                "when requests are recorded but not sent at once."
            ),
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help=(
                "Show what would be recorded, retried and sent, then stop: nothing "
                "is written to the database and nothing is sent."
            ),
        )

    def execute(self, *args: Any, **options: Any) -> str | None:
        # Wrapped here, not in handle(), so Django's own report of a CommandError
        # and of system check messages is escaped too.
        options["stdout"] = _Escaping(options.get("stdout") or sys.stdout)
        options["stderr"] = _Escaping(options.get("stderr") or sys.stderr)
        return super().execute(*args, **options)

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["no_color"]:
            self.stderr.style_func = self.style.ERROR
        self.verbosity: int = options["verbosity"]
        modes = options["retry_failed"] or options["deliver"]
        if not options["identifiers"] and options["file"] is None and not modes:
            raise CommandError(NOTHING_TO_DO)

        store_views = self._store_views(options["store_views"])
        identifiers = self._identifiers(
            options["identifiers"], options["file"], options.get("stdin")
        )
        self._check_settings()

        if options["dry_run"]:
            self._dry_run(identifiers, store_views, options)
        else:
            self._run(identifiers, store_views, options)

    def _store_views(self, names: list[str] | None) -> list[str] | None:
        if names is None:
            return None

        configured = conf.store_view_names
        unknown = [name for name in names if name not in configured]
        if unknown:
            raise CommandError(
                f"Unknown store view {unknown[0]!r}. The configured store views "
                f"are: {', '.join(configured) or 'none'}."
            )
        return list(dict.fromkeys(names))

    def _check_settings(self) -> None:
        # Fail before recording anything: a request recorded for a store view that
        # cannot be used would only fail at delivery.
        try:
            conf.store_views  # noqa: B018  (validates every store view)
        except ConfigurationError as err:
            raise CommandError(str(err)) from err

    def _identifiers(
        self, arguments: Sequence[str], path: str | None, stdin: IO[Any] | None
    ) -> list[str]:
        """Every identifier given, validated and without repeats; or CommandError."""
        entries: list[tuple[str, str | None]] = [
            (f"argument {number}", _from_argv(value))
            for number, value in enumerate(arguments, start=1)
        ]
        if path is not None:
            name = "stdin" if path == STDIN else path
            lines = _lines(self._read(path, stdin))
            entries += [
                (f"{name}, line {number}", line)
                for number, line in enumerate(lines, start=1)
                if line is None or line.strip()
            ]

        found: dict[str, None] = {}
        problems: list[str] = []
        for where, value in entries:
            try:
                found[_clean(value)] = None
            except InvalidIdentifier as err:
                problems.append(f"{where}: {err}")

        if problems:
            for problem in problems:
                self.stderr.write(problem)
            raise CommandError(
                f"{_plural(len(problems), 'identifier')} cannot be sent (see above); "
                "nothing was recorded or sent."
            )
        return list(found)

    def _read(self, path: str, stdin: IO[Any] | None) -> bytes | str:
        if path == STDIN:
            stream = stdin or sys.stdin
            # The bytes, not the locale's decoding of them: identifiers are UTF-8.
            data: bytes | str = getattr(stream, "buffer", stream).read()
            return data

        try:
            with open(path, "rb") as file:
                return file.read()
        except OSError as err:
            raise CommandError(
                f"Cannot read {path}: {err.strerror or type(err).__name__}."
            ) from err

    def _run(
        self,
        identifiers: list[str],
        store_views: list[str] | None,
        options: dict[str, Any],
    ) -> None:
        recorded = delivery.record(
            identifiers,
            source=Source.COMMAND,
            store_views=store_views,
            force=options["force"],
        )
        ids = recorded.to_deliver
        # Someone asking for an identifier now overrides the backoff of an earlier
        # attempt at it.
        delivery.retry(ids)
        if options["retry_failed"]:
            ids += delivery.retry(_retryable(store_views).values_list("pk", flat=True))
        if options["deliver"]:
            ids += _due(store_views).values_list("pk", flat=True)
        ids = list(dict.fromkeys(ids))

        delivered = delivery.deliver(ids)

        self._report(ids, delivered, recorded.already_forgotten)

    def _report(
        self,
        ids: list[int],
        delivered: delivery.Delivered,
        already_forgotten: list[ForgetRequest],
    ) -> None:
        requests = ForgetRequest.objects.in_bulk(ids)
        pauses = _pauses()
        kinds = []
        for pk in ids:
            if pk in requests:
                kind, text = _outcome(requests[pk], delivered, pauses)
                self._report_one(requests[pk], kind, text)
                kinds.append(kind)
        for request in already_forgotten:
            self._say(2, f"{_describe(request)}: already forgotten, not sent.")

        self._say(1, self._summary(kinds, len(already_forgotten)))
        if FAILED in kinds:
            raise CommandError(
                f"{_plural(kinds.count(FAILED), 'forget request')} not delivered; "
                "see above. Once the cause is fixed, run pureclarity_forget "
                "--retry-failed."
            )

    def _report_one(self, request: ForgetRequest, kind: str, text: str) -> None:
        line = f"{_describe(request)}: {text}"
        if kind == FAILED:
            self.stderr.write(line)
        else:
            self._say(2, line)

    def _summary(self, kinds: list[str], already_forgotten: int) -> str:
        total = len(kinds) + already_forgotten
        if not total:
            return "No forget requests to send."

        summary = (
            f"{_plural(total, 'forget request')}: {kinds.count(SUCCEEDED)} "
            f"succeeded, {kinds.count(FAILED)} failed, "
            f"{already_forgotten} already forgotten"
        )
        pending = kinds.count(STILL_PENDING)
        if pending:
            summary += f", {pending} still pending"
        return summary + "."

    def _dry_run(
        self,
        identifiers: list[str],
        store_views: list[str] | None,
        options: dict[str, Any],
    ) -> None:
        recorded = self._preview(identifiers, store_views, options["force"])
        for request in [*recorded.created, *recorded.already_open]:
            self._say(
                1,
                f"Would forget {request.identifier_hint} in store view "
                f"'{request.store_view}'.",
            )
        for request in recorded.already_forgotten:
            self._say(
                1,
                f"Would skip {request.identifier_hint} in store view "
                f"'{request.store_view}': already forgotten (--force sends it again).",
            )

        if options["retry_failed"]:
            self._preview_queue("retry", "failed", _retryable(store_views))
        if options["deliver"]:
            self._preview_queue("deliver", "pending", _due(store_views))
        self._say(1, "Dry run: nothing was recorded or sent.")

    def _preview(
        self, identifiers: list[str], store_views: list[str] | None, force: bool
    ) -> delivery.Recorded:
        # Recording for real and rolling back runs the very code a real run would,
        # so the preview cannot drift from what would happen; nothing is committed.
        with transaction.atomic():
            recorded = delivery.record(
                identifiers,
                source=Source.COMMAND,
                store_views=store_views,
                force=force,
            )
            transaction.set_rollback(True)
        return recorded

    def _preview_queue(
        self, verb: str, state: str, requests: QuerySet[ForgetRequest]
    ) -> None:
        chosen = list(requests)
        for request in chosen:
            self._say(2, f"Would {verb} {_describe(request)}.")
        self._say(1, f"Would {verb} {_plural(len(chosen), f'{state} request')}.")

    def _say(self, verbosity: int, text: str) -> None:
        if self.verbosity >= verbosity:
            self.stdout.write(text)
