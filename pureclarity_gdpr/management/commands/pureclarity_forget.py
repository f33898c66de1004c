"""``manage.py pureclarity_forget``: forget people in PureClarity, run the queue.

Run from a shell or cron it records and delivers forget requests; it also runs
the delivery worker and lists, resumes and purges the requests recorded.

Identifiers come from the arguments and from a file or standard input; every one is
validated before anything is written, so bad input leaves no half-recorded batch.
Requests are recorded like any other forget request and delivered at once, a batch
at a time. Output shows identifiers masked, never the keys.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from pureclarity_gdpr import worker
from pureclarity_gdpr.conf import SETTING_NAME, conf
from pureclarity_gdpr.exceptions import ConfigurationError

from . import _forget_queue as queue
from ._forget_io import Escaping, Printer, read_identifiers
from ._forget_send import Plan, SendRun

NOTHING_TO_DO = (
    "Give identifiers to forget, as arguments or with --file PATH (--file - reads "
    "standard input), or choose what to do with the requests already recorded: "
    "--deliver, --retry-failed, --worker, --list, --resume STORE_VIEW or --purge. "
    "See --help."
)
# Modes that run on their own; the others (identifiers, --retry-failed, --deliver,
# --resume) combine in one run.
ALONE = ("worker", "list", "purge")
# Options that mean something only with a mode, and that mode.
ONLY_WITH = {
    "status": "list",
    "older_than_days": "purge",
    "poll_interval": "worker",
}


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number above 0")
    return number


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not 0 < number < math.inf:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a number of seconds above 0"
        )
    return number


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


class Command(BaseCommand):
    help = (
        "Forget people in PureClarity: record a forget request for each identifier "
        "in each chosen store view and deliver it at once. Or work on the requests "
        "already recorded: deliver the due ones (--deliver, once; --worker, until "
        "stopped), retry failed ones, list them, resume a paused store view, or "
        "purge old details. Identifiers are shown masked; characters the output's "
        "encoding cannot show are written as backslash escapes (\\xeb) rather than "
        "failing. -v0 prints only errors, -v1 a summary, -v2 also a line per "
        "request (per batch for --worker). Requests not delivered are listed on "
        "stderr and make the command exit non-zero."
    )
    # Lets tests and callers of call_command() pass their own standard input.
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        self._add_sending_arguments(parser)
        self._add_queue_arguments(parser)
        parser.add_argument(
            "--batch-size",
            type=_positive_int,
            default=worker.BATCH_SIZE,
            metavar="N",
            help=(
                "Claim and send at most N requests at a time (default "
                f"{worker.BATCH_SIZE}); memory stays flat however many are due."
            ),
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help=(
                "Show what would be recorded, retried, sent, resumed or purged, "
                "then stop: nothing is written to the database and nothing is sent."
            ),
        )

    def _add_sending_arguments(self, parser: CommandParser) -> None:
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
                f"view configured in {SETTING_NAME}. Also limits --retry-failed, "
                "--deliver and --list."
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
                "tried again after a failure; use once the cause is fixed. This "
                "also lifts the pause of a store view whose requests it retries, "
                "and sends the requests that pause held back."
            ),
        )
        parser.add_argument(
            "--deliver",
            action="store_true",
            help=(
                "Deliver every request that is due, batch after batch, then stop; "
                "for cron, when requests are recorded but not sent at once. "
                "SIGTERM or Ctrl-C stops it after the requests in flight."
            ),
        )

    def _add_queue_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--worker",
            action="store_true",
            help=(
                "Keep delivering due requests until SIGTERM or SIGINT, which stop "
                "it after the requests in flight (exit status 0); for systemd or "
                "supervisor. On SQLite run only one."
            ),
        )
        parser.add_argument(
            "--poll-interval",
            type=_positive_float,
            metavar="SECONDS",
            help="How often --worker looks for due requests (default 5).",
        )
        parser.add_argument(
            "--list",
            action="store_true",
            help=(
                "List the pending, sending, failed and needs-attention requests "
                "with their counts, and the paused store views."
            ),
        )
        parser.add_argument(
            "--status",
            action="append",
            choices=[str(status) for status in queue.LISTED],
            help="With --list: only requests in this status; repeat for several.",
        )
        parser.add_argument(
            "--resume",
            action="append",
            metavar="STORE_VIEW",
            help=(
                "Lift the pause of a store view that PureClarity refused, once its "
                "keys are fixed; repeat for several. Its pending requests become "
                "due (add --deliver to send them now)."
            ),
        )
        parser.add_argument(
            "--purge",
            action="store_true",
            help=(
                "Strip finished requests to the proof of erasure (hash, store view, "
                "status, dates) once older than --older-than-days or "
                f"{SETTING_NAME}['RETENTION_DAYS']."
            ),
        )
        parser.add_argument(
            "--older-than-days",
            type=_positive_int,
            metavar="N",
            help="With --purge: the age in days, instead of RETENTION_DAYS.",
        )

    def execute(self, *args: Any, **options: Any) -> str | None:
        # Wrapped here, not in handle(), so Django's own report of a CommandError
        # and of system check messages is escaped too.
        options["stdout"] = Escaping(options.get("stdout") or sys.stdout)
        options["stderr"] = Escaping(options.get("stderr") or sys.stderr)
        return super().execute(*args, **options)

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["no_color"]:
            self.stderr.style_func = self.style.ERROR
        self.out = Printer(
            self.stdout, self.stderr, options["verbosity"], self.style.WARNING
        )
        self._check_modes(options)
        store_views = self._store_views(options["store_views"])

        if options["worker"]:
            poll_interval = options["poll_interval"] or 5.0
            queue.run_worker(self.out, poll_interval, options["batch_size"])
        elif options["list"]:
            queue.list_requests(self.out, options["status"], store_views)
        elif options["purge"]:
            queue.purge(self.out, options["older_than_days"], options["dry_run"])
        else:
            self._send(store_views, options)

    def _check_modes(self, options: dict[str, Any]) -> None:
        """Refuse combinations that would do something other than what was meant."""
        given = [name for name in ALONE if options[name]]
        others = [
            _flag(name)
            for name in ("retry_failed", "deliver", "resume")
            if options[name]
        ]
        if options["identifiers"] or options["file"] is not None:
            others.insert(0, "identifiers")
        if not given and not others:
            raise CommandError(NOTHING_TO_DO)

        if given and len(given) + len(others) > 1:
            rest = [_flag(name) for name in given[1:]] + others
            raise CommandError(f"--{given[0]} cannot be combined with {rest[0]}.")
        for name, mode in ONLY_WITH.items():
            if options[name] is not None and not options[mode]:
                raise CommandError(f"{_flag(name)} applies only to --{mode}.")
        for name in ("worker", "purge"):
            if options[name] and options["store_views"] is not None:
                raise CommandError(
                    f"--{name} works on every store view; drop --store-view."
                )
        if options["worker"] and options["dry_run"]:
            raise CommandError("--worker cannot be combined with --dry-run.")

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

    def _send(self, store_views: list[str] | None, options: dict[str, Any]) -> None:
        """Record identifiers, then resume, retry and deliver as asked."""
        identifiers = read_identifiers(
            options["identifiers"], options["file"], options.get("stdin"), self.out
        )
        plan = Plan(
            store_views=store_views,
            resume=queue.resumable(options["resume"] or []),
            force=options["force"],
            retry_failed=options["retry_failed"],
            deliver=options["deliver"],
            batch_size=options["batch_size"],
        )
        self._check_settings()

        run = SendRun(self.out, plan)
        if options["dry_run"]:
            run.dry_run(identifiers)
            return
        given = bool(options["identifiers"]) or options["file"] is not None
        run.run(identifiers, sends=given or plan.retry_failed or plan.deliver)
