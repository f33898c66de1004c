"""Benchmarks of pureclarity_gdpr (issue "Scale"): one table of figures and ratios.

    python benchmarks/run.py [--size small|full] [--database-url URL]

Every figure is compared with a reference measured in the same run, so the ratios
hold on any machine even where the times do not. All traffic goes to a local
PureClarity on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, the package of the benchmarks is not importable otherwise.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    from benchmarks.server import ServerProcess
    from benchmarks.table import Row

MARKER_GROUP = "pureclarity-gdpr benchmarks"


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/run.py",
        description="Measure pureclarity_gdpr against its goals; all traffic stays "
        "on 127.0.0.1.",
    )
    parser.add_argument(
        "--size",
        choices=["small", "full"],
        default="small",
        help="small runs in under a minute (for CI); full gives the figures of "
        "the closing note",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL"),
        help="the database to use (default: DATABASE_URL, else a SQLite file in a "
        "temporary directory); its users and forget requests are deleted",
    )
    return parser.parse_args(argv)


def _ensure_postgres_database(config: dict[str, Any]) -> None:
    """Create the benchmark's own database if it does not exist yet."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(
        dbname="postgres",
        user=config.get("USER") or None,
        password=config.get("PASSWORD") or None,
        host=config.get("HOST") or None,
        port=config.get("PORT") or None,
        autocommit=True,
    ) as conn:
        name = config["NAME"]
        found = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if found is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _prepare_database(url: str) -> str:
    """Check the URL can serve several processes; return a name to print."""
    import environ

    config = environ.Env.db_url_config(url)
    engine, name = config["ENGINE"], str(config.get("NAME", ""))
    if engine.endswith("sqlite3") and name in ("", ":memory:"):
        raise SystemExit(
            "An in-memory SQLite database cannot be shared with the benchmark's "
            "child processes: give a file, such as sqlite:////tmp/bench.sqlite3."
        )
    if engine.endswith("postgresql"):
        _ensure_postgres_database(config)
    return f"{engine.rsplit('.', 1)[-1]} database {name!r}"


def _claim_database() -> None:
    """Refuse a database holding data that the benchmarks would destroy."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from pureclarity_gdpr.models import ForgetRequest

    if Group.objects.filter(name=MARKER_GROUP).exists():
        return
    if get_user_model().objects.exists() or ForgetRequest.objects.exists():
        raise SystemExit(
            "The database holds users or forget requests, and the benchmarks empty "
            "those tables: point --database-url at a database of its own, such as "
            "postgres://postgres@127.0.0.1:5432/pcgdpr_bench."
        )
    Group.objects.create(name=MARKER_GROUP)


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f}/{five:.2f}"


def _versions(database: str) -> str:
    import django

    from pureclarity_gdpr import __version__

    return (
        f"pureclarity-gdpr {__version__}, Django {django.get_version()}, "
        f"Python {platform.python_version()}, {database}, "
        f"{os.cpu_count()} CPUs"
    )


def _measure(size_name: str, database: str, server: ServerProcess) -> None:
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)
    _claim_database()

    from benchmarks import scenarios
    from benchmarks.table import render

    size = scenarios.SIZES[size_name]
    details: list[str] = []
    steps: list[tuple[str, Callable[[], list[Row]]]] = [
        ("deletion", lambda: scenarios.deletions(size, details)),
        ("immediate", lambda: scenarios.immediate(server, size)),
        ("throughput", lambda: scenarios.throughput(server, size, details)),
        ("rate limit", lambda: scenarios.rate_limit(server, size, details)),
        ("memory", lambda: scenarios.memory(server, size, details)),
    ]
    load_before = _load()
    rows: list[Row] = []
    took: list[str] = []
    for name, step in steps:
        started = time.perf_counter()
        rows += step()
        took.append(f"{name} {time.perf_counter() - started:.0f} s")

    print(f"Benchmarks ({size_name}): {_versions(database)}")
    print()
    print(render(rows))
    print()
    for line in details:
        print(f"- {line}")
    print(
        f"- Run took {', '.join(took)}; load average {load_before} before, "
        f"{_load()} after (other work on the machine slows the figures, the "
        "ratios less so)."
    )


def main(argv: Sequence[str] | None = None) -> int:
    from benchmarks.server import ServerProcess

    args = _parse(argv)
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"

    with (
        tempfile.TemporaryDirectory(prefix="pcgdpr-bench-") as tmp,
        ServerProcess() as server,
    ):
        url = args.database_url or f"sqlite:///{tmp}/bench.sqlite3"
        database = _prepare_database(url)
        # The settings, here and in child processes, read both from the environment.
        os.environ["PCGDPR_BENCH_DATABASE_URL"] = url
        os.environ["PCGDPR_BENCH_BASE_URL"] = server.url
        _measure(args.size, database, server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
