"""The example shop served on loopback, a local PureClarity, and headless Chromium.

The shop runs as ``manage.py runserver`` in a process of its own, on a SQLite
database made for the session, and sends its forget requests to a
LocalPureClarity in this process, which the tests tell how to answer. Without
Debian's chromium, its driver or selenium the tests are skipped, except on CI,
where a browser test that cannot run is a failure.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import requests

from pureclarity_gdpr.testing import LocalPureClarity

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

    from .browser import AdminBrowser

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
MANAGE = REPO / "example_project" / "manage.py"
# Where the screenshots go when PURECLARITY_SCREENSHOTS is set (to this path, say,
# to refresh the README's); otherwise each test keeps its own in a temporary folder,
# so running the tests leaves the checkout as it was.
SCREENSHOTS = os.environ.get("PURECLARITY_SCREENSHOTS")
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

ACCESS_KEY = "AK-E2E"
SECRET_KEY = "SK-E2E-FAKE-0000"
PASSWORD = "e2e-password-not-secret"
# Staff: one who handles erasures, one who may only look.
OFFICER = "erin"
VIEWER = "victor"
CUSTOMERS = ("ana", "ben", "cleo", "dan", "emma", "finn")

STARTUP_TIMEOUT = 30.0
COMMAND_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0

# Run by ``manage.py shell``: the shop's staff and customers. Prints username to
# primary key as JSON on its last line.
SETUP_SCRIPT = """
import json
from django.contrib.auth.models import Permission, User

def staff(username, *codenames):
    user = User.objects.create_user(username, password={password!r}, is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))

staff({officer!r}, "view_user", "view_forgetrequest", "forget_in_pureclarity")
staff({viewer!r}, "view_user", "view_forgetrequest")
for name in {customers!r}:
    User.objects.create_user(name, email=name + "@example.test")
print(json.dumps(dict(User.objects.values_list("username", "pk"))))
"""


def on_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def missing_browser_parts() -> list[str]:
    """What the browser tests need and this machine lacks, with how to get it."""
    missing = []
    if not CHROMIUM.is_file():
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    if not CHROMEDRIVER.is_file():
        missing.append(f"{CHROMEDRIVER} (apt-get install chromium-driver)")
    if importlib.util.find_spec("selenium") is None:
        missing.append('selenium (pip install -e ".[e2e]")')
    return missing


@pytest.fixture(scope="session", autouse=True)
def browser_parts() -> None:
    """Skip the browser tests where they cannot run; on CI, fail them instead."""
    missing = missing_browser_parts()
    if not missing:
        return

    reason = "the browser tests need " + ", ".join(missing)
    if on_ci():
        pytest.fail(reason + "; CI must run them", pytrace=False)
    pytest.skip(reason)


@dataclass(frozen=True)
class Shop:
    """The example shop, running: its address, its users, its PureClarity."""

    url: str
    users: dict[str, int]
    pureclarity: LocalPureClarity
    env: dict[str, str]

    def manage(self, *args: str) -> str:
        """Run a management command of the shop; return what it printed."""
        return manage(self.env, *args)


def shop_environment(folder: Path, pureclarity_url: str) -> dict[str, str]:
    """The example's settings for this run, whatever the caller's environment says."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PURECLARITY_", "DJANGO_"))
        and key not in {"DATABASE_URL", "SECRET_KEY"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="shop.settings",
        DATABASE_URL=f"sqlite:///{folder / 'db.sqlite3'}",
        SECRET_KEY="e2e-tests-only-not-a-secret-key-0123456789",
        # runserver serves the admin's CSS and JavaScript only with DEBUG on.
        DEBUG="true",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        PURECLARITY_ACCESS_KEY=ACCESS_KEY,
        PURECLARITY_SECRET_KEY=SECRET_KEY,
        PURECLARITY_BASE_URL=pureclarity_url,
        PYTHONUNBUFFERED="1",
    )
    return env


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(  # noqa: S603 - our own interpreter and manage.py
        [sys.executable, str(MANAGE), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(
            f"manage.py {args[0]} exited {done.returncode}:\n{done.stderr[-3000:]}"
        )
    return done.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_answering(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    """Return once the shop answers; fail with its log if it dies or never does."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    with requests.Session() as session:
        # Only loopback is asked, so proxy variables must not send it elsewhere.
        session.trust_env = False
        while time.monotonic() < deadline and server.poll() is None:
            with contextlib.suppress(requests.ConnectionError):
                if session.get(url, timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
    raise AssertionError(
        f"The example shop did not answer at {url}:\n{log.read_text()[-3000:]}"
    )


@contextlib.contextmanager
def running_shop(env: dict[str, str], folder: Path) -> Iterator[str]:
    """``manage.py runserver`` on a free loopback port, stopped at the end."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = folder / "runserver.log"
    command = [sys.executable, str(MANAGE), "runserver", f"127.0.0.1:{port}"]
    with log.open("wb") as output:
        server = subprocess.Popen(  # noqa: S603 - our own interpreter and manage.py
            [*command, "--noreload"], env=env, stdout=output, stderr=output
        )
        try:
            wait_until_answering(f"{url}/admin/login/", server, log)
            logger.info("The example shop answers at %s", url)
            yield url
        finally:
            server.terminate()
            try:
                server.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


@pytest.fixture(scope="session")
def shop(
    tmp_path_factory: pytest.TempPathFactory, browser_parts: None
) -> Iterator[Shop]:
    """The example shop with its staff and customers, served on loopback."""
    folder = tmp_path_factory.mktemp("shop")
    with LocalPureClarity("127.0.0.1", 0) as pureclarity:
        env = shop_environment(folder, pureclarity.url)
        manage(env, "migrate", "--noinput")
        script = SETUP_SCRIPT.format(
            password=PASSWORD, officer=OFFICER, viewer=VIEWER, customers=CUSTOMERS
        )
        users = json.loads(manage(env, "shell", "-c", script).splitlines()[-1])

        with running_shop(env, folder) as url:
            yield Shop(url=url, users=users, pureclarity=pureclarity, env=env)


@pytest.fixture(autouse=True)
def local_pureclarity(shop: Shop) -> LocalPureClarity:
    """The shop's PureClarity, answering normally and with nothing received yet.

    It accepts only the shop's keys, as the real one would; others get 403.
    """
    shop.pureclarity.reset()
    shop.pureclarity.expect_keys(ACCESS_KEY, SECRET_KEY)
    return shop.pureclarity


@pytest.fixture(scope="session")
def chromium(
    tmp_path_factory: pytest.TempPathFactory, browser_parts: None
) -> Iterator[WebDriver]:
    from .browser import start_chromium

    driver = start_chromium(
        CHROMIUM, CHROMEDRIVER, tmp_path_factory.mktemp("chromium-profile")
    )
    yield driver
    driver.quit()


@pytest.fixture
def admin(chromium: WebDriver, shop: Shop, tmp_path: Path) -> AdminBrowser:
    """The shop's admin in Chromium, logged out, saving downloads to tmp_path."""
    from .browser import AdminBrowser

    chromium.get("about:blank")
    # WebDriver's own call clears only the open page's cookies; this clears all.
    chromium.execute_cdp_cmd("Network.clearBrowserCookies", {})
    screenshots = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path / "screenshots"
    browser = AdminBrowser(chromium, shop.url, screenshots, tmp_path)
    browser.allow_downloads()
    return browser
