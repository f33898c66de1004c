"""The benchmarks that need a fresh process: ``python -m benchmarks.child JOB``.

Each job prints one line of JSON, its figures, as the last line of its output.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections.abc import Sequence
from typing import Any

import django

from benchmarks.deletion import VARIANTS


def _peak_rss_kb() -> int:
    # Linux reports kilobytes, macOS bytes.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


def _rss_now_kb() -> int:
    """The resident set size now (Linux); 0 where /proc is not there."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
    except OSError:
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def _deletions(args: argparse.Namespace) -> dict[str, Any]:
    from .deletion import measure

    return measure(args.variant, args.singles, args.bulk, args.rounds)


def _create_pending(args: argparse.Namespace) -> dict[str, Any]:
    from .data import clear_requests, create_pending

    clear_requests()
    create_pending(args.count)
    return {"created": args.count}


def _deliver(args: argparse.Namespace) -> dict[str, Any]:
    from django.test import override_settings

    from pureclarity_gdpr.models import ForgetRequest, Status
    from pureclarity_gdpr.worker import drain

    from .data import gdpr_settings

    before = _peak_rss_kb()
    config = gdpr_settings(DELIVERY="worker", MAX_IN_FLIGHT=args.max_in_flight)
    with override_settings(PURECLARITY_GDPR=config):
        started = time.perf_counter()
        drain()
        seconds = time.perf_counter() - started

    acknowledged = ForgetRequest.objects.filter(status=Status.SUCCEEDED).count()
    return {
        "acknowledged": acknowledged,
        "seconds": seconds,
        "peak_rss_before_kb": before,
        "peak_rss_kb": _peak_rss_kb(),
        "rss_after_kb": _rss_now_kb(),
    }


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.child")
    jobs = parser.add_subparsers(dest="job", required=True)

    deletions = jobs.add_parser("deletions")
    deletions.add_argument("--variant", choices=VARIANTS, required=True)
    deletions.add_argument("--singles", type=int, required=True)
    deletions.add_argument("--bulk", type=int, required=True)
    deletions.add_argument("--rounds", type=int, required=True)
    deletions.set_defaults(run=_deletions)

    pending = jobs.add_parser("create-pending")
    pending.add_argument("--count", type=int, required=True)
    pending.set_defaults(run=_create_pending)

    deliver = jobs.add_parser("deliver")
    deliver.add_argument("--max-in-flight", type=int, default=16)
    deliver.set_defaults(run=_deliver)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    without_app = getattr(args, "variant", "") == "without-app"
    settings = "settings_without_app" if without_app else "settings"
    os.environ["DJANGO_SETTINGS_MODULE"] = f"benchmarks.{settings}"
    django.setup()

    print(json.dumps(args.run(args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
