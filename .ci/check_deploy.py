"""Run the example shop's ``check --deploy`` with its production settings.

    python .ci/check_deploy.py

DEBUG is off, so the settings ask for HTTPS, secure cookies and HSTS, and for a
SECRET_KEY from the environment: the one given, else a new random one, which is
never printed. Any warning fails the check.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

MANAGE = Path(__file__).resolve().parent.parent / "example_project" / "manage.py"
TIMEOUT = 120


def main() -> int:
    env = {
        **os.environ,
        "DEBUG": "false",
        "ALLOWED_HOSTS": os.environ.get("ALLOWED_HOSTS", "shop.example.test"),
        "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(64),
    }
    # HTTPS=false would switch off what this check is here to see.
    env.pop("HTTPS", None)

    command = [
        sys.executable,
        str(MANAGE),
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
    ]
    return subprocess.run(command, env=env, timeout=TIMEOUT, check=False).returncode  # noqa: S603


if __name__ == "__main__":
    sys.exit(main())
