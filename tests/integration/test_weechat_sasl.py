"""Issue 12: a real WeeChat logs in with SASL PLAIN from its own configuration, at one worker
and at four.

The account is made before the server starts, as an administrator would, with ``fastchat
accounts create`` on the server's data directory (``tests/accountserver.py``). WeeChat (``tests/weechatclient.py``) is then
configured with the commands the README gives a user: the password in WeeChat's secured data,
``sasl_mechanism``, ``sasl_username``, ``sasl_password`` referring to it, ``sasl_fail
continue``, then ``/connect``. They are typed through the fifo, not given to
``--run-command``, which would evaluate ``${sec.data...}`` before WeeChat stores it.

The login is proved on both sides: WeeChat's server buffer shows the server's 900 and 903
before the welcome, and its own ``/whois`` the account; a raw observer (extended-join,
account-tag) sees the account on WeeChat's JOIN, on its messages and in WHOIS (330). With a
wrong password WeeChat shows the 904, stays connected (``sasl_fail continue``) and is logged
in to nothing: ``*`` on its JOIN, no account tag, no 330, and NickServ asks it to IDENTIFY
for the registered nick it took. Every wait has a deadline; WeeChat is stopped and the
server fixture stops the server whatever happens.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fastchat.server.runtime import process
from tests.accountserver import (
    ACCOUNT,
    NICK_PROTECTION,
    PASSWORD,
    observer,
    running_with_account,
    tags,
)
from tests.ircclient import IRCClient, wait_nicks_free
from tests.weechatclient import WeeChat, requires_weechat, server_commands, started

pytestmark = requires_weechat

SERVER = "irc.server.fastchat"
Connect = Callable[..., IRCClient]


@pytest.fixture(scope="module", params=[1, 4], ids=["1worker", "4workers"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[process.ServerProcess]:
    """A server whose store holds ``ACCOUNT``, at one worker and at four."""
    with running_with_account(tmp_path_factory.mktemp("data"), request.param) as srv:
        yield srv


def sasl_commands(password: str) -> list[str]:
    """What the README tells a user to type once ``/server add fastchat ...`` is done."""
    return [
        f"/secure set fastchat_password {password}",
        "/set irc.server.fastchat.sasl_mechanism plain",
        f"/set irc.server.fastchat.sasl_username {ACCOUNT}",
        '/set irc.server.fastchat.sasl_password "${sec.data.fastchat_password}"',
        "/set irc.server.fastchat.sasl_fail continue",
        "/connect fastchat",
    ]


@pytest.fixture
def weechat_for(
    tmp_path: Path, server: process.ServerProcess
) -> Iterator[Callable[[str, str], WeeChat]]:
    """``weechat_for(nick, password)``: a WeeChat that adds the server for ``nick``, then is
    given SASL ``ACCOUNT``/``password`` as a user would and connects. Stopped at the end,
    and its nick free again before the next test takes it."""
    nicks: list[str] = []
    with contextlib.ExitStack() as stack:

        def start(nick: str, password: str) -> WeeChat:
            nicks.append(nick)
            weechat = stack.enter_context(started(tmp_path, server_commands(server, nick)))
            for command in sasl_commands(password):
                weechat.send("core.weechat", command)
            return weechat

        yield start
    if nicks:
        wait_nicks_free(server.host, server.port, nicks)


def messages(weechat: WeeChat) -> list[str]:
    """What WeeChat showed in the server buffer."""
    return [message for _, message in weechat.log(SERVER)]


def registered(weechat: WeeChat) -> list[str]:
    """The server buffer once the welcome is in it: SASL's outcome comes before it."""
    weechat.wait_log(SERVER, lambda p, m: m.startswith("Welcome to"), "the welcome")
    return messages(weechat)


def whois_self(weechat: WeeChat) -> list[str]:
    """What WeeChat shows of its own ``/whois``: ``[nick] ...`` lines up to the end."""
    weechat.send(SERVER, f"/whois {ACCOUNT}")
    head = f"[{ACCOUNT}] "
    weechat.wait_log(SERVER, lambda p, m: m.startswith(head) and "End of" in m, "WHOIS's end")
    return [m for m in messages(weechat) if m.startswith(head)]


def test_weechat_logs_in_with_sasl(connect: Connect, weechat_for: Callable[..., WeeChat]) -> None:
    """The account-tag, extended-join and WHOIS 330 show WeeChat's account; WeeChat shows
    the 900 and the 903 during registration (before the welcome), and its own WHOIS the
    account."""
    obs = observer(connect)
    weechat = weechat_for(ACCOUNT, PASSWORD)

    obs.expect(rf"^(@\S+ )?:{ACCOUNT}!\S+ JOIN #lobby {ACCOUNT} :")
    shown = registered(weechat)
    logged_in = f"You are now logged in as {ACCOUNT} ({ACCOUNT}!"
    i900 = next((i for i, m in enumerate(shown) if m.startswith(logged_in)), None)
    assert i900 is not None, weechat.dump()
    assert shown[i900 + 1] == "SASL authentication successful", weechat.dump()
    assert i900 < next(i for i, m in enumerate(shown) if m.startswith("Welcome to"))
    # the password is in WeeChat's secured data; the option only refers to it
    weechat.wait_log(
        "core.weechat",
        lambda p, m: m.startswith(f'Option changed: {SERVER}.sasl_password = "${{sec.data.'),
        "sasl_password referring to the secured data",
    )

    obs.send(f"WHOIS {ACCOUNT}")
    obs.expect(rf" 330 observer {ACCOUNT} {ACCOUNT} :is logged in as$")
    weechat.wait_log(
        "irc.fastchat.#lobby", lambda p, m: p == "-->" and m.startswith(ACCOUNT), "its JOIN"
    )
    weechat.send("irc.fastchat.#lobby", "hello as an account")
    line = obs.expect(rf":{ACCOUNT}!\S+ PRIVMSG #lobby :hello as an account$").string
    assert f"account={ACCOUNT}" in tags(line), line
    assert f"[{ACCOUNT}] is logged in as {ACCOUNT}" in whois_self(weechat)
    assert not [m for m in messages(weechat) if NICK_PROTECTION in m]
    assert weechat.errors() == []


def test_weechat_with_a_wrong_password_is_not_logged_in(
    connect: Connect, weechat_for: Callable[..., WeeChat]
) -> None:
    """A wrong password: 904, and with ``sasl_fail continue`` WeeChat registers anyway,
    logged in to nothing, and is asked to IDENTIFY for the registered nick it took."""
    obs = observer(connect)
    weechat = weechat_for(ACCOUNT, "not the password")

    obs.expect(rf"^(@\S+ )?:{ACCOUNT}!\S+ JOIN #lobby \* :")
    shown = registered(weechat)
    assert "SASL authentication failed" in shown, weechat.dump()
    assert not any(m.startswith("You are now logged in") for m in shown), weechat.dump()
    assert "SASL authentication successful" not in shown, weechat.dump()

    obs.send(f"WHOIS {ACCOUNT}")
    assert not any(" 330 " in line for line in obs.expect_until(rf" 318 observer {ACCOUNT} "))
    weechat.wait_log(
        "irc.fastchat.#lobby", lambda p, m: p == "-->" and m.startswith(ACCOUNT), "its JOIN"
    )
    weechat.send("irc.fastchat.#lobby", "hello as nobody")
    line = obs.expect(rf":{ACCOUNT}!\S+ PRIVMSG #lobby :hello as nobody$").string
    assert not any(tag.startswith("account=") for tag in tags(line)), line
    assert not [m for m in whois_self(weechat) if "logged in" in m], weechat.dump()
    weechat.wait_log(SERVER, lambda p, m: NICK_PROTECTION in m, "NickServ's notice")
    assert weechat.errors() == []
