"""The web client in a real browser (headless Chromium), against a real fastchat server at one
and four workers: log in, see #lobby, talk with a raw TCP client and a TLS client, /join /msg
/me /topic, history on reload and on scrolling up, reconnection, a phone-sized window.

Each test opens the page afresh (the ``page`` fixture), and fails if the console shows a
JavaScript error. Raw clients are ``tests.ircclient.IRCClient``; they synchronise with the
server by PING/PONG, and the page is waited on until what a user would see is there.
"""

from __future__ import annotations

import itertools
import os
import re
import ssl
from collections.abc import Callable, Iterator

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from fastchat.server.runtime import process
from fastchat.server.runtime.tls import SELF_SIGNED_CERT
from tests.browser import browser
from tests.browser.browser import WebChat
from tests.ircclient import IRCClient, wait_nicks_free

_ids = itertools.count(1)


def unique(prefix: str) -> str:
    """A nick or channel no other test of this server uses."""
    return f"{prefix}{next(_ids)}"


@pytest.fixture
def irc(web_server: process.ServerProcess) -> Iterator[Callable[..., IRCClient]]:
    """``irc("bob")`` a registered raw client (``tls=True``: over TLS, verifying the server's
    self-signed certificate); all closed, and their nicks free, at the end."""
    clients: list[IRCClient] = []

    def make(nick: str, *, tls: bool = False) -> IRCClient:
        context = None
        port = web_server.port
        if tls:
            assert web_server.own_data_dir is not None
            cert = os.path.join(web_server.own_data_dir, SELF_SIGNED_CERT)
            context = ssl.create_default_context(cafile=cert)
            port = web_server.tls_port
        client = IRCClient(web_server.host, port, nick, tls=context)
        clients.append(client)
        return client

    yield make
    nicks = [c.nick for c in clients if c.nick]
    for client in clients:
        client.close()
    wait_nicks_free(web_server.host, web_server.port, nicks)


def test_login_shows_lobby_with_us_in_it(page: WebChat, irc: Callable[..., IRCClient]) -> None:
    bob = irc(unique("bob"))
    bob.sync()
    nick = unique("web")
    page.login(nick)
    assert page.tabs()[:2] == ["Server", "#lobby"]
    bob.expect(rf"^:{nick}!\S+ JOIN :?#lobby")
    page.wait(lambda: bob.nick in page.member_nicks(), "bob in the member list")
    assert "Connecting" not in page.status()


def test_messages_both_ways_with_a_tcp_client_own_shown_once(
    page: WebChat, irc: Callable[..., IRCClient]
) -> None:
    bob = irc(unique("bob"))
    nick = unique("web")
    page.login(nick)
    bob.expect(rf"^:{nick}!\S+ JOIN")
    bob.send("PRIVMSG #lobby :hello from the terminal")
    line = page.wait_line("hello from the terminal")
    assert line.startswith(f"{bob.nick}: ")
    page.type("hello from the browser")
    bob.expect(rf"^:{nick}!\S+ PRIVMSG #lobby :hello from the browser$")
    page.wait_line("hello from the browser")
    # echo-message: the server's copy is the one shown, once, with its time
    bob.sync()
    page.wait(
        lambda: page.js("return window.fastchat.state.activeBuffer().lines.at(-1).msgid"),
        "our line to carry the server's msgid",
    )
    assert sum("hello from the browser" in x for x in page.lines()) == 1
    stamp = page.js("return document.querySelector('#message-list .line:last-child time').dateTime")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp)


def test_text_from_the_network_is_never_markup(
    page: WebChat, irc: Callable[..., IRCClient]
) -> None:
    bob = irc(unique("bob"))
    page.login(unique("web"))
    bob.send(
        "PRIVMSG #lobby :<img src=x onerror=\"document.title='pwned'\"><b>bold</b> https://example.org/a?b=1"
    )
    page.wait_line("<b>bold</b>")
    assert page.find_all("#message-list img") == []
    assert page.find_all("#message-list b") == []
    links = page.js(
        "return [...document.querySelectorAll('#message-list a[target=_blank]')].map(a => a.href)"
    )
    assert links == ["https://example.org/a?b=1"]
    assert "pwned" not in page.driver.title


def test_private_messages_with_a_tls_client(page: WebChat, irc: Callable[..., IRCClient]) -> None:
    secure = irc(unique("tls"), tls=True)
    assert isinstance(secure.sock, ssl.SSLSocket)
    nick = unique("web")
    page.login(nick)
    secure.send(f"PRIVMSG {nick} :psst, over TLS")
    page.wait_tab(secure.nick)
    page.wait(lambda: page.unread(secure.nick) == 1, "an unread count of 1 on the query tab")
    assert page.active_tab() == "#lobby"
    page.click_tab(secure.nick)
    page.wait_line("psst, over TLS")
    assert page.unread(secure.nick) == 0
    marker = page.js(
        "const m = document.querySelector('#message-list .unread-marker');"
        "return m && m.nextElementSibling.textContent"
    )
    assert marker and "psst, over TLS" in marker, "the new-messages line above the first unread"
    page.type("got it")
    secure.expect(rf"^:{nick}!\S+ PRIVMSG {secure.nick} :got it$")
    page.type(f"/msg {secure.nick} and a second one")
    secure.expect(rf"^:{nick}!\S+ PRIVMSG {secure.nick} :and a second one$")
    page.wait_line("and a second one")


def test_join_me_topic_part(page: WebChat, irc: Callable[..., IRCClient]) -> None:
    channel = unique("#dev")
    bob = irc(unique("bob"))
    bob.send(f"JOIN {channel}")
    bob.expect(rf" 366 {bob.nick} {channel} ")
    nick = unique("web")
    page.login(nick)
    page.type(f"/join {channel}")
    page.wait_active(channel)
    bob.expect(rf"^:{nick}!\S+ JOIN :?{channel}")
    page.wait(lambda: f"@{bob.nick}" in page.members(), "bob as an operator in the nick list")
    page.type("/me waves")
    bob.expect(rf"^:{nick}!\S+ PRIVMSG {channel} :\x01ACTION waves\x01$")
    page.wait_line(f"* {nick} waves")
    bob.send(f"TOPIC {channel} :Release planning")
    page.wait(lambda: page.topic() == "Release planning", "the topic bar")
    bob.send(f"MODE {channel} +v {nick}")
    page.wait(lambda: f"+{nick}" in page.members(), "our voice in the nick list")
    page.type("/part")
    bob.expect(rf"^:{nick}!\S+ PART {channel}")
    page.wait(lambda: channel not in page.tabs(), "the channel's tab to close")
    assert page.active_tab() == "Server"
    # a #channel in a line is a link that joins it
    page.click_tab("#lobby")
    bob.send(f"PRIVMSG #lobby :come back to {channel}, please")
    page.wait_line(f"come back to {channel}, please")
    page.find(f"#message-list a[data-channel='{channel}']").click()
    bob.expect(rf"^:{nick}!\S+ JOIN :?{channel}")
    page.wait_active(channel)


def test_nick_change_and_errors_in_the_active_tab(
    page: WebChat, irc: Callable[..., IRCClient]
) -> None:
    bob = irc(unique("bob"))
    nick = unique("web")
    page.login(nick)
    bob.expect(rf"^:{nick}!\S+ JOIN")
    page.type(f"/nick {nick}x")
    bob.expect(rf"^:{nick}!\S+ NICK :?{nick}x$")
    page.wait_line(f"{nick} is now known as {nick}x")
    page.type(f"/whois {bob.nick}")
    page.wait_line(f"{bob.nick} is ~{bob.nick}@")
    page.wait_line(f"End of WHOIS for {bob.nick}")
    page.type("/msg nobody_here_at_all hi")
    page.wait_line("No such nick")
    page.type("/frobnicate")
    page.wait_line("Unknown command /frobnicate")
    page.type("/nick")
    page.wait_line("Usage: /nick")
    page.nick = f"{nick}x"


def test_history_after_a_reload(page: WebChat, irc: Callable[..., IRCClient]) -> None:
    bob = irc(unique("bob"))
    nick = unique("web")
    page.login(nick)
    bob.expect(rf"^:{nick}!\S+ JOIN")
    for i in range(5):
        bob.send(f"PRIVMSG #lobby :before the reload {i}")
    page.type("my own line")
    bob.expect("my own line")
    page.wait_line("before the reload 4")
    page.driver.refresh()
    # the session is remembered: the page reconnects on its own, under the same nick
    page.wait_active("#lobby")
    page.wait_registered()
    bob.expect(rf"^:{nick}!\S+ JOIN")
    for i in range(5):
        page.wait_line(f"before the reload {i}")
    page.wait_line("my own line")
    lines = page.lines()
    assert sum("before the reload 3" in x for x in lines) == 1
    # same nick (had the old connection not quit yet, it is taken back as soon as it has)
    page.wait(lambda: page.js("return window.fastchat.conn.nick") == nick, "our nick")


def test_scrolling_up_loads_older_history(page: WebChat, irc: Callable[..., IRCClient]) -> None:
    total = 50  # two and a half pages
    channel = unique("#hist")
    bob = irc(unique("bob"))
    bob.send(f"JOIN {channel}")
    for i in range(total):
        bob.send(f"PRIVMSG {channel} :line {i:03}")
    bob.sync()
    # a short window: one page of history overflows it (a shorter one is filled at once)
    page.viewport(1280, 520)
    page.login(unique("web"))
    page.type(f"/join {channel}")
    page.wait_active(channel)
    page.wait_line(f"line {total - 1:03}")
    # only the latest page at first (--chathistory-max 20 on this server)
    assert not any("line 000" in x for x in page.lines())
    for _ in range(5):
        page.js("document.getElementById('messages').scrollTop = 0")
        if any("line 000" in x for x in page.lines()):
            break
        page.wait(
            lambda: not page.js("return window.fastchat.state.activeBuffer().historyLoading"),
            "a history page",
        )
    page.wait_line("line 000")
    numbers = [int(m[1]) for x in page.lines() if (m := re.search(r"line (\d{3})$", x))]
    assert numbers == list(range(total))
    page.wait(
        lambda: "beginning of the history" in page.find("#history-marker").text,
        "the beginning-of-history marker",
    )
    # reading up there, a new line arrives below: a button says so, and takes us down
    page.js("document.getElementById('messages').scrollTop = 0")
    assert not page.find("#jump").is_displayed()
    bob.send(f"PRIVMSG {channel} :meanwhile, below")
    page.wait(lambda: page.find("#jump").is_displayed(), "the 'new lines below' button")
    page.find("#jump").click()
    page.wait(lambda: not page.find("#jump").is_displayed(), "the button to go")
    assert page.js(
        "const m = document.getElementById('messages');"
        "return m.scrollHeight - m.scrollTop - m.clientHeight < 40"
    )


def test_keyboard_recall_completion_and_tab_switching(
    page: WebChat, irc: Callable[..., IRCClient]
) -> None:
    bob = irc(unique("zed"))
    page.login(unique("web"))
    page.wait(lambda: bob.nick in page.member_nicks(), "zed in #lobby")
    page.type("first line")
    bob.expect("first line")
    page.keys(Keys.ARROW_UP)
    assert page.find("#input").get_attribute("value") == "first line"
    page.find("#input").clear()
    page.keys(bob.nick[:3], Keys.TAB)
    assert page.find("#input").get_attribute("value") == f"{bob.nick}: "
    page.keys("hi", Keys.ENTER)
    bob.expect(f"PRIVMSG #lobby :{bob.nick}: hi$")
    page.keys("/jo", Keys.TAB, "#lob", Keys.TAB)
    assert page.find("#input").get_attribute("value") == "/join #lobby "
    page.find("#input").clear()
    # a focused tab keeps its focus while lines arrive (the list is updated in place)
    page.js("document.querySelector('#buffer-list button').focus()")
    bob.send("PRIVMSG #lobby :a line while you tab around")
    page.wait_line("a line while you tab around")
    assert page.js("return document.activeElement.dataset.buffer") == "*server*"
    page.keys("half a thought")
    page.keys(Keys.ALT, "1")
    page.wait_active("Server")
    assert page.find("#input").get_attribute("value") == ""  # each tab has its own draft
    page.keys(Keys.ALT, "2")
    page.wait_active("#lobby")
    assert page.find("#input").get_attribute("value") == "half a thought"
    page.find("#input").clear()
    page.type("/clear")
    page.wait(lambda: page.lines() == [], "the tab to be cleared")
    bob.send("PRIVMSG #lobby :after the clear")
    page.wait_line("after the clear")


def test_reconnects_and_rejoins_its_channels(page: WebChat, irc: Callable[..., IRCClient]) -> None:
    channel = unique("#back")
    bob = irc(unique("bob"))
    bob.send(f"JOIN {channel}")
    nick = unique("web")
    page.login(nick)
    page.type(f"/join {channel}")
    bob.expect(rf"^:{nick}!\S+ JOIN :?{channel}")
    # the connection drops under the client's feet (as when a network goes away)
    page.js("window.fastchat.conn.ws.close()")
    page.wait(lambda: "Reconnecting in" in page.status(), "the status line to say so")
    bob.expect(rf"^:{nick}!\S+ QUIT")
    assert page.find("#status-action").text == "Reconnect now"
    page.find("#status-action").click()  # rather than wait for the backoff
    bob.expect(rf"^:{nick}!\S+ JOIN :?{channel}", timeout=15)
    page.wait_registered()
    page.wait(lambda: page.status() == "", "the status line to go")
    bob.send(f"PRIVMSG {channel} :welcome back")
    page.click_tab(channel)
    page.wait_line("welcome back")


def test_phone_sized_window(page: WebChat, irc: Callable[..., IRCClient]) -> None:
    page.viewport(390, 844, mobile=True)
    nick = unique("web")
    page.login(nick)
    assert not page.find("#buffers").is_displayed() or page.js(
        "return document.getElementById('buffers').getBoundingClientRect().right <= 0"
    )
    assert page.js(
        "return document.getElementById('members').getBoundingClientRect().left >= innerWidth"
    ), "the nick list is folded away"
    assert page.js("return document.documentElement.scrollWidth <= innerWidth"), (
        "no sideways scroll"
    )
    page.find("#toggle-members").click()
    page.wait(
        lambda: page.js(
            "const r = document.getElementById('members').getBoundingClientRect();"
            "return r.right <= innerWidth + 1 && r.left < innerWidth"
        ),
        "the nick list drawer to open",
    )
    # a tap beside the drawer (on the dimmed page at the left) closes it
    ActionChains(page.driver).move_to_element_with_offset(
        page.find("#scrim"), -170, 0
    ).click().perform()
    page.wait(lambda: not page.find("#scrim").is_displayed(), "the drawer to close")
    page.find("#toggle-buffers").click()
    page.wait(
        lambda: page.js(
            "return document.getElementById('buffers').getBoundingClientRect().left >= -1"
        ),
        "the tab drawer to open",
    )
    page.click_tab("Server")  # choosing a tab closes the drawer
    page.wait(lambda: not page.find("#scrim").is_displayed(), "the drawer to close")
    page.find("#toggle-buffers").click()
    page.click_tab("#lobby")
    page.type("from a phone")
    page.wait_line("from a phone")


def test_sasl_login_with_a_password(page: WebChat, irc: Callable[..., IRCClient]) -> None:
    account = unique("acct")
    maker = irc(unique("maker"))
    maker.send("CAP REQ :draft/account-registration")
    maker.send(f"REGISTER {account} * correct-horse-battery")
    maker.expect(rf" REGISTER SUCCESS {account} ")
    page.login(account, password="correct-horse-battery")
    maker.send(f"WHOIS {account}")
    maker.expect(rf" 330 {maker.nick} {account} {account} ")
    page.click_tab("Server")
    page.wait_line(f"You are now logged in as {account}")


def test_sasl_failure_is_said_and_the_session_goes_on(
    page: WebChat, irc: Callable[..., IRCClient]
) -> None:
    bob = irc(unique("bob"))
    nick = unique("web")
    page.login(nick, password="not-an-account")
    page.wait(lambda: "SASL login failed" in page.status(), "the status line to say so")
    assert "connected without an account" in page.status()
    page.find("#status-action").click()
    page.wait(lambda: page.status() == "", "the warning to be dismissed")
    page.type("still here")
    bob.expect(rf"^:{nick}!\S+ PRIVMSG #lobby :still here$")
    page.click_tab("Server")
    page.wait_line("SASL authentication failed")


def test_console_errors_are_seen(page: WebChat) -> None:
    """The check every test ends with can fail: an error in the page reaches it."""
    page.js("setTimeout(() => { throw new Error('boom from the page') }, 0)")
    page.wait(lambda: page.js("return document.readyState") == "complete", "the page")
    errors = page.wait(lambda: browser.console_errors(page.driver), "the error in the console log")
    assert any("boom from the page" in e for e in errors)


def test_a_server_that_cannot_be_reached_sends_back_to_the_form(page: WebChat) -> None:
    page.find(".login-advanced summary").click()
    url = page.find("#login-url")
    assert url.get_attribute("value") == page.url.replace("http://", "ws://")  # the page's own
    url.clear()
    url.send_keys("ws://127.0.0.1:9/")  # the discard port: nothing listens
    page.find("#login-nick").send_keys(unique("web"))
    page.find("#login-submit").click()
    page.wait(lambda: page.find("#login-error").is_displayed(), "an error on the form")
    assert "ws://127.0.0.1:9/" in page.find("#login-error").text
    assert page.find("#login").is_displayed()
    # the browser itself reports the failed connection in the console, and nothing else
    errors = browser.console_errors(page.driver)
    assert errors and all("ws://127.0.0.1:9/" in e for e in errors), errors


def test_a_nick_in_use_is_taken_back_when_it_is_free(
    page: WebChat, irc: Callable[..., IRCClient]
) -> None:
    holder = irc(unique("held"))
    page.wait(lambda: page.find("#login-nick").is_displayed(), "the login form")
    page.find("#login-nick").send_keys(holder.nick)
    page.find("#login-submit").click()
    page.wait_registered()
    assert page.js("return window.fastchat.conn.nick") == holder.nick + "_"
    nick = holder.nick
    holder.send("QUIT :making room")
    holder.wait_closed()
    holder.nick = ""  # the page's now: not to be waited for when the test ends
    page.wait(
        lambda: page.js("return window.fastchat.conn.nick") == nick,
        "the client to take its nick back (MONITOR)",
    )
    page.wait_active("#lobby")
    page.wait_line(f"{nick}_ is now known as {nick}")


def test_over_https_the_client_speaks_wss(
    page: WebChat, web_server: process.ServerProcess, irc: Callable[..., IRCClient]
) -> None:
    assert web_server.web_tls_port, web_server.log_text()
    origin = f"https://{web_server.host}:{web_server.web_tls_port}"
    page.url = origin + "/"
    page.open()
    assert page.find("#login-url").get_attribute("value") == origin.replace("https", "wss") + "/"
    bob = irc(unique("bob"))
    nick = unique("web")
    page.login(nick)
    page.type("sent over wss")
    bob.expect(rf"^:{nick}!\S+ PRIVMSG #lobby :sent over wss$")
    assert page.js("return window.fastchat.conn.ws.url").startswith("wss://")


def test_delete_own_last_message(page: WebChat, irc: Callable[..., IRCClient]) -> None:
    """``/delete`` withdraws our last message (IRCv3 message-redaction): the server decides
    it and echoes the REDACT, and the line then says so instead of its text."""
    bob = irc(unique("bob"))
    nick = unique("web")
    page.login(nick)
    bob.expect(rf"^:{nick}!\S+ JOIN")
    page.type("a typo right here")
    bob.expect(rf"^:{nick}!\S+ PRIVMSG #lobby :a typo right here$")
    page.wait(
        lambda: page.js("return window.fastchat.state.activeBuffer().lines.at(-1).msgid"),
        "our line to carry the server's msgid",
    )
    page.type("/delete")
    page.wait_line("message deleted")
    assert not any("a typo right here" in x for x in page.lines())


def test_read_markers_shared_with_another_device(
    page: WebChat, irc: Callable[..., IRCClient]
) -> None:
    """IRCv3 read-marker: the page marks as read what it shows (another connection of the
    account is told), and what another connection of the account reads is no longer unread
    on the page."""
    account = unique("reader")
    phone = irc(unique("phone"))
    phone.send("CAP REQ :draft/account-registration draft/read-marker")
    phone.expect(r" ACK ")
    phone.send(f"REGISTER {account} * correct-horse-battery")
    phone.expect(rf" REGISTER SUCCESS {account} ")
    bob = irc(unique("bob"))
    page.login(account, password="correct-horse-battery")
    bob.send("PRIVMSG #lobby :read me on the page")
    page.wait_line("read me on the page")
    # the page shows #lobby: it says how far it has read, and the phone is told
    phone.expect(r"^:\S+ MARKREAD #lobby timestamp=\S+$")
    bob.send(f"PRIVMSG {account} :a private word")
    buf = f"window.fastchat.state.buffer('{bob.nick}')"
    page.wait(lambda: page.js(f"return {buf}?.unread"), "the conversation unread")
    stamp = page.js(f"return new Date({buf}.lines.at(-1).time).toISOString()")
    phone.send(f"MARKREAD {bob.nick} timestamp={stamp}")  # read on the phone
    page.wait(
        lambda: page.js(f"return {buf}.unread") == 0,
        "the conversation read on the other device",
    )
