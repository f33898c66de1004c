"""Headless Chromium driving the admin the way a person does: click, read, look.

Only Debian's chromium and its chromedriver are used, by path, so Selenium
Manager never looks for (or downloads) a browser or a driver of its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import (
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

# What keeps a headless Chromium to itself: no sandbox (CI runs as root), no
# GPU, and nothing it would fetch from the internet on its own.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--no-proxy-server",
    # Every host but the shop's loopback address resolves to nothing: the
    # browser has no business anywhere else.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--window-size=1440,900",
    "--lang=en-US",
)
# Seconds a page or a download has to appear before the test fails.
WAIT = 15.0
# Screenshots are committed and shown in the README, so they must stay small.
MAX_SCREENSHOT_BYTES = 300_000


def start_chromium(chromium: Path, chromedriver: Path, profile: Path) -> WebDriver:
    """A headless Chromium with a fresh profile, driven through Debian's driver."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(chromium)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    service = Service(executable_path=str(chromedriver))
    return webdriver.Chrome(service=service, options=options)


@dataclass(frozen=True)
class Box:
    """An element's rectangle on the page, in CSS pixels."""

    x: float
    y: float
    width: float
    height: float

    @property
    def right(self) -> float:
        return self.x + self.width

    @property
    def bottom(self) -> float:
        return self.y + self.height

    @property
    def middle(self) -> float:
        return self.y + self.height / 2

    def overlaps(self, other: Box) -> bool:
        return (
            self.x < other.right
            and other.x < self.right
            and self.y < other.bottom
            and other.y < self.bottom
        )

    def within(self, other: Box) -> bool:
        return (
            self.x >= other.x
            and self.y >= other.y
            and self.right <= other.right
            and self.bottom <= other.bottom
        )


@dataclass(frozen=True)
class Breadcrumbs:
    """The admin's trail back to its index: its element, its look, its links."""

    tag: str
    background: str
    height: float
    links: list[str]


class AdminBrowser:
    """The Django admin of the example shop, as one person sees it in Chromium."""

    def __init__(
        self, driver: WebDriver, base_url: str, screenshots: Path, downloads: Path
    ) -> None:
        self.driver = driver
        self.base_url = base_url
        self.screenshots = screenshots
        self.downloads = downloads

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def log_in(self, username: str, password: str) -> None:
        self.open("/admin/login/?next=/admin/")
        # The navigation sidebar stays closed, so the lists and screenshots have
        # room for every column; the admin keeps this choice in localStorage.
        self.driver.execute_script(
            "localStorage.setItem('django.admin.navSidebarIsOpen', 'false')"
        )
        self.driver.find_element(By.ID, "id_username").send_keys(username)
        self.driver.find_element(By.ID, "id_password").send_keys(password)

        self._navigate(self.driver.find_element(By.CSS_SELECTOR, "[type=submit]").click)

        self.driver.find_element(By.ID, "user-tools")

    @property
    def text(self) -> str:
        """The words on the page, as rendered."""
        return self.driver.find_element(By.TAG_NAME, "body").text

    @property
    def heading(self) -> str:
        return self.driver.find_element(By.CSS_SELECTOR, "#content h1").text

    @property
    def messages(self) -> list[str]:
        """The messages the admin shows at the top of the page."""
        items = self.driver.find_elements(By.CSS_SELECTOR, "ul.messagelist li")
        return [item.text for item in items]

    @property
    def action_labels(self) -> list[str]:
        """The choices of the action dropdown; none when the page offers none."""
        selects = self.driver.find_elements(By.NAME, "action")
        if not selects:
            return []
        return [option.text for option in Select(selects[0]).options]

    def box(self, css: str) -> Box:
        """Where the first element matching ``css`` is drawn on the page."""
        rect = self.driver.find_element(By.CSS_SELECTOR, css).rect
        return Box(rect["x"], rect["y"], rect["width"], rect["height"])

    def text_box(self, css: str) -> Box:
        """Where the words of the first element matching ``css`` are drawn.

        Narrower than the element's box: a table cell is as tall as its row, but
        its words sit where its vertical alignment puts them.
        """
        x, y, width, height = self.driver.execute_script(
            "const words = document.createRange();"
            "words.selectNodeContents(document.querySelector(arguments[0]));"
            "const box = words.getBoundingClientRect();"
            "return [box.x + scrollX, box.y + scrollY, box.width, box.height];",
            css,
        )
        return Box(x, y, width, height)

    def breadcrumbs(self) -> Breadcrumbs:
        """The trail of links under the header, as the page draws it."""
        trail = self.driver.find_element(By.CSS_SELECTOR, ".breadcrumbs")
        links = trail.find_elements(By.TAG_NAME, "a")
        return Breadcrumbs(
            tag=trail.tag_name,
            background=trail.value_of_css_property("background-color"),
            height=trail.rect["height"],
            links=[link.text for link in links],
        )

    def has_link(self, text: str) -> bool:
        # By the words in the page's source: the admin's CSS upper-cases some links.
        return bool(self._links(text))

    def click_link(self, text: str) -> None:
        links = self._links(text)
        assert links, f"No link {text!r} on {self.driver.current_url}"

        self._navigate(links[0].click)

    def filter_by(self, title: str, choice: str) -> None:
        """Click a choice in the changelist's filter sidebar, under "By <title>"."""
        # The sidebar is a <nav> up to Django 5.2 and a <search> from 6.0: found
        # by its id, whichever element the admin makes it.
        link = self.driver.find_element(
            By.XPATH,
            f"//*[@id='changelist-filter']//details[@data-filter-title='{title}']"
            f"//a[normalize-space()='{choice}']",
        )
        self._navigate(link.click)

    def row(self, label: str) -> WebElement:
        """The changelist row whose link reads ``label``."""
        return self.driver.find_element(
            By.XPATH, f"//table[@id='result_list']//tr[.//th/a[text()='{label}']]"
        )

    def row_texts(self) -> list[str]:
        rows = self.driver.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
        return [row.text for row in rows]

    def select(self, *labels: str) -> None:
        """Tick the rows whose links read these labels."""
        for label in labels:
            self.row(label).find_element(By.NAME, "_selected_action").click()

    def select_all(self) -> None:
        self.driver.find_element(By.ID, "action-toggle").click()

    def choose_action(self, label: str) -> None:
        Select(self.driver.find_element(By.NAME, "action")).select_by_visible_text(
            label
        )

    def run_action(self, label: str) -> None:
        """Choose the action in the dropdown and press Go."""
        self.choose_action(label)

        go = self.driver.find_element(By.CSS_SELECTOR, "button[name=index]")
        self._navigate(go.click)

    def press_go(self) -> None:
        """Press Go without waiting for a new page: a download leaves this one."""
        self.driver.find_element(By.CSS_SELECTOR, "button[name=index]").click()

    def press(self, value: str) -> None:
        """Press the submit button that reads ``value``."""
        button = self.driver.find_element(
            By.XPATH, f"//input[@type='submit' and @value='{value}']"
        )
        self._navigate(button.click)

    def type_into(self, field_name: str, text: str) -> None:
        field = self.driver.find_element(By.NAME, field_name)
        field.clear()
        field.send_keys(text)

    def tick(self, label: str) -> None:
        """Make sure the checkbox labelled ``label`` is ticked."""
        box = self.driver.find_element(
            By.XPATH, f"//label[normalize-space()='{label}']/input[@type='checkbox']"
        )
        if not box.is_selected():
            box.click()

    def allow_downloads(self) -> None:
        """Save downloads to this test's folder, as a person's browser would."""
        self.driver.execute_cdp_cmd(
            "Browser.setDownloadBehavior",
            {"behavior": "allow", "downloadPath": str(self.downloads)},
        )

    def download(self, start: Callable[[], None], pattern: str) -> Path:
        """Run ``start`` and wait for the file it downloads to be complete."""
        start()

        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            # Chromium writes to a .crdownload file and renames it once complete.
            done = sorted(self.downloads.glob(pattern))
            if done:
                return done[0]
            time.sleep(0.1)
        raise AssertionError(f"No download matching {pattern} within {WAIT} s")

    def screenshot(self, name: str) -> Path:
        """Save what the page shows now under the screenshots folder as <name>."""
        self.screenshots.mkdir(parents=True, exist_ok=True)
        path = self.screenshots / name

        self.driver.save_screenshot(str(path))

        assert path.stat().st_size < MAX_SCREENSHOT_BYTES
        return path

    def _links(self, text: str) -> list[WebElement]:
        return self.driver.find_elements(By.XPATH, f"//a[normalize-space()='{text}']")

    def _navigate(self, click: Callable[[], None]) -> None:
        """Click, then wait until the browser has left the page for the next one."""
        page = self.driver.find_element(By.TAG_NAME, "html")
        click()
        WebDriverWait(self.driver, WAIT).until(lambda _: has_left(page))


def has_left(page: WebElement) -> bool:
    """Whether the browser has replaced the document this element belongs to.

    Asked while the old page is being replaced, Chromium's driver may answer
    that the element's node no longer belongs to the document rather than
    that the element is stale: both mean the page is gone.
    """
    try:
        page.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as error:
        if "does not belong to the document" in (error.msg or ""):
            return True
        raise
    return False
