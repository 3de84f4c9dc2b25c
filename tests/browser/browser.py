"""Headless Chromium for the browser tests: Debian's ``chromium`` and ``chromedriver``
driven by Selenium, and a ``WebChat`` helper that works the web client as a user would
(typing, clicking, reading what is on screen).

Selenium is pointed at ``/usr/bin/chromedriver`` and never downloads a driver. Every wait
polls the page until a condition holds or a deadline passes; nothing sleeps and hopes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = os.environ.get("FASTCHAT_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("FASTCHAT_CHROMEDRIVER", "/usr/bin/chromedriver")
WAIT = float(os.environ.get("FASTCHAT_TEST_TIMEOUT", "10"))
DESKTOP = (1280, 800)

T = TypeVar("T")


def missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            return f"{path} is not installed (apt-get install chromium chromium-driver; make test does)"
    return None


@contextmanager
def chromium() -> Iterator[WebDriver]:
    """A headless Chromium in a fresh profile, gone (with its profile) afterwards."""
    profile = tempfile.mkdtemp(prefix="fastchat-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",  # root in a container: the sandbox cannot start
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        f"--window-size={DESKTOP[0]},{DESKTOP[1]}",
        "--lang=en-US",
        "--force-color-profile=srgb",
        "--hide-scrollbars",
    ):
        options.add_argument(flag)
    # the console, for the test that fails on JavaScript errors
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # the test servers' https:// and wss:// use a self-signed certificate
    options.accept_insecure_certs = True
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(driver: WebDriver, condition: Callable[[], T], what: str, timeout: float = WAIT) -> T:
    """Poll ``condition`` until it returns something true; fail saying ``what`` was awaited."""

    def attempt(_: Any) -> T | bool:
        try:
            return condition()
        except StaleElementReferenceException:
            return False

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.05).until(attempt)  # type: ignore[return-value]
    except TimeoutException:
        raise AssertionError(f"timed out waiting for {what}") from None


def console_errors(driver: WebDriver) -> list[str]:
    """The console's errors since the last call (reading empties the log)."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


class WebChat:
    """The web client in the browser, seen as a user sees it."""

    def __init__(self, driver: WebDriver, url: str) -> None:
        self.driver = driver
        self.url = url
        self.nick = ""

    # -- reading the page --------------------------------------------------------------------
    def js(self, script: str, *args: object) -> Any:
        return self.driver.execute_script(script, *args)

    def find(self, selector: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def find_all(self, selector: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def wait(self, condition: Callable[[], T], what: str, timeout: float = WAIT) -> T:
        return wait_for(self.driver, condition, what, timeout)

    def tabs(self) -> list[str]:
        """The tab names in the list, as shown."""
        return self.js(
            "return [...document.querySelectorAll('#buffer-list .name')].map(e => e.textContent)"
        )  # type: ignore[no-any-return]

    def active_tab(self) -> str:
        return self.js(  # type: ignore[no-any-return]
            "const b = document.querySelector('#buffer-list [aria-current=page] .name');"
            "return b ? b.textContent : null"
        )

    def unread(self, tab: str) -> int:
        """The unread badge of a tab (0 when it shows none)."""
        return int(
            self.js(
                "for (const b of document.querySelectorAll('#buffer-list button')) {"
                "  if (b.querySelector('.name').textContent === arguments[0]) {"
                "    const badge = b.querySelector('.badge'); return badge ? badge.textContent : '0'; } }"
                "return '0';",
                tab,
            )
        )

    def lines(self) -> list[str]:
        """The text of every line of the active tab (without the time)."""
        return self.js(  # type: ignore[no-any-return]
            "return [...document.querySelectorAll('#message-list .line .body')].map(e => e.textContent)"
        )

    def members(self) -> list[str]:
        """The member list, each with its prefixes ('@+op')."""
        return self.js(  # type: ignore[no-any-return]
            "return [...document.querySelectorAll('#member-list .member')]"
            ".map(e => e.querySelector('.prefix').textContent + e.querySelector('.nick').textContent)"
        )

    def member_nicks(self) -> list[str]:
        return [m.lstrip("~&@%+") for m in self.members()]

    def topic(self) -> str:
        return self.find("#topic").text

    def status(self) -> str:
        """The status line's text, '' when hidden."""
        return self.js(  # type: ignore[no-any-return]
            "const s = document.getElementById('status'); return s.hidden ? '' : s.textContent.trim()"
        )

    def wait_line(self, text: str, timeout: float = WAIT) -> str:
        """Wait until a line of the active tab contains ``text``; returns that line."""

        def found() -> str | None:
            return next((line for line in self.lines() if text in line), None)

        try:
            return self.wait(found, f"a line with {text!r}", timeout)
        except AssertionError:
            raise AssertionError(
                f"no line with {text!r} in {self.active_tab()!r}; lines:\n  "
                + "\n  ".join(self.lines())
            ) from None

    def wait_tab(self, name: str) -> None:
        self.wait(lambda: name in self.tabs(), f"a tab {name!r} (tabs: {self.tabs()})")

    def wait_active(self, name: str) -> None:
        self.wait(lambda: self.active_tab() == name, f"{name!r} to be the active tab")

    def wait_registered(self) -> None:
        self.wait(
            lambda: (
                self.js("return window.fastchat.conn && window.fastchat.conn.state") == "registered"
            ),
            "the connection to be registered",
        )

    # -- acting ------------------------------------------------------------------------------
    def viewport(self, width: int, height: int, *, mobile: bool = False) -> None:
        """Make the page's viewport exactly this size (a window's size includes its frame),
        as a phone (touch, ``mobile``) or not."""
        self.driver.execute_cdp_cmd(  # type: ignore[attr-defined]
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
        )

    def reset_viewport(self) -> None:
        self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})  # type: ignore[attr-defined]

    def open(self) -> None:
        self.driver.get(self.url)
        self.wait(lambda: self.js("return !!window.fastchat"), "the app to load")

    def login(self, nick: str, password: str = "") -> None:
        """Fill in the form and connect; returns once #lobby is shown."""
        self.nick = nick
        self.wait(lambda: self.find("#login-nick").is_displayed(), "the login form")
        field = self.find("#login-nick")
        field.clear()
        field.send_keys(nick)
        if password:
            self.find("#login-password").send_keys(password)
        self.find("#login-submit").click()
        self.wait_active("#lobby")
        self.wait(lambda: nick in self.member_nicks(), "our nick in #lobby")

    def type(self, text: str) -> None:
        """Type a line into the input and press Enter."""
        box = self.find("#input")
        box.send_keys(text)
        box.send_keys(Keys.ENTER)

    def keys(self, *keys: str) -> None:
        self.find("#input").send_keys(*keys)

    def click_tab(self, name: str) -> None:
        def click() -> bool:
            for button in self.find_all("#buffer-list button"):
                if button.find_element(By.CSS_SELECTOR, ".name").text == name:
                    button.click()
                    return True
            return False

        self.wait(click, f"a tab {name!r} to click (tabs: {self.tabs()})")
        self.wait_active(name)

    def leave(self) -> None:
        """Close the page (the client quits on pagehide) and forget the session."""
        self.js("localStorage.clear(); sessionStorage.clear()")
        self.driver.get("about:blank")
        self.reset_viewport()
