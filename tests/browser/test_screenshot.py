"""The README's picture of the web client (docs/webclient.png), made from a realistic session
on a fresh server: a few people talking in #lobby (an operator, a voiced member, a link, an
action), a second channel with unread lines, and a private message.

The picture is always made and checked; it is written to docs/ only with
FASTCHAT_UPDATE_SCREENSHOT=1 (``make screenshot``), so an ordinary test run leaves the
repository as it was.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from fastchat.server.runtime import process
from tests.browser import browser
from tests.browser.browser import WebChat
from tests.ircclient import IRCClient

DOCS_PNG = Path(__file__).resolve().parents[2] / "docs" / "webclient.png"


@pytest.fixture(scope="module")
def fresh_server() -> Iterator[process.ServerProcess]:
    """A server of its own: no history from other tests in the picture."""
    with process.running(["--web-port", "-1"], workers=4) as srv:
        yield srv


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_screenshot_of_a_realistic_session(
    driver: WebDriver, fresh_server: process.ServerProcess, tmp_path: Path
) -> None:
    srv = fresh_server
    people: list[IRCClient] = []

    def person(nick: str) -> IRCClient:
        client = IRCClient(srv.host, srv.port, nick)
        people.append(client)
        return client

    chat = WebChat(driver, f"http://{srv.host}:{srv.web_port}/")
    try:
        chat.viewport(*browser.DESKTOP)
        ada = person("ada")  # first in #lobby: its operator
        ada.send("TOPIC #lobby :Welcome to fastchat! Be kind · docs: https://example.org/fastchat")
        grace, linus, margaret = person("grace"), person("linus"), person("margaret")
        for p in (grace, linus, margaret):
            p.send("JOIN #dev")
            p.sync()
        ada.send("MODE #lobby +v grace")

        def say(who: IRCClient, text: str) -> None:
            # one after the other: people on different workers are otherwise in no order
            who.send(f"PRIVMSG {text}")
            who.sync()

        say(ada, "#lobby :Morning all! The 0.2 release notes are up for review.")
        say(grace, "#lobby :Thanks ada, reading them now")
        say(linus, "#lobby :The new benchmark tables are in BENCHMARKS.md, worth a look")

        chat.open()
        chat.js("localStorage.clear(); sessionStorage.clear()")
        chat.open()
        chat.login("alan")
        say(margaret, "#lobby :\x01ACTION waves at alan\x01")
        say(margaret, "#lobby :alan: did the web client land? I'd love to try it on my phone")
        chat.wait_line("did the web client land")
        chat.type("It did: open http://localhost:8080 and log in, no install needed")
        chat.wait_line("no install needed")
        say(grace, "#lobby :Works here on my phone, the nick list folds away nicely")
        say(ada, "#lobby :History comes back when you reload, too")
        chat.wait_line("when you reload")
        chat.type("/join #dev")
        chat.wait_active("#dev")
        chat.click_tab("#lobby")
        say(linus, "#dev :CI is green on the ws branch")
        say(grace, "#dev :Merging after lunch")
        say(grace, "alan :Coffee later?")
        chat.wait(lambda: chat.unread("#dev") == 2 and chat.unread("grace") == 1, "unread badges")
        chat.wait(lambda: "+grace" in chat.members(), "grace voiced")
        chat.js("document.activeElement.blur()")  # no caret in the picture

        png = driver.get_screenshot_as_png()
        assert png_size(png) == browser.DESKTOP
        (tmp_path / "webclient.png").write_bytes(png)
        if os.environ.get("FASTCHAT_UPDATE_SCREENSHOT") == "1":
            DOCS_PNG.parent.mkdir(exist_ok=True)
            DOCS_PNG.write_bytes(png)
        errors = browser.console_errors(driver)
        assert not errors, "JavaScript console errors:\n" + "\n".join(errors)
    finally:
        chat.leave()
        for p in people:
            p.close()
