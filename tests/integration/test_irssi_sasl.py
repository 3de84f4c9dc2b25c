"""Issue 12: a real irssi logs in with SASL PLAIN from its own configuration, at one worker and
at four.

The account is made before the server starts with ``fastchat accounts create``
(``tests/accountserver.py``). irssi (``tests/irssiclient.py``) is then typed the commands the
README gives a user: ``/network add`` with ``-sasl_mechanism``, ``-sasl_username`` and
``-sasl_password``, ``/server add``, ``/connect``. The login is proved on both sides: irssi
shows the server's 900 and its own line for the 903 before the welcome, and the account in
its own ``/whois``; a raw observer sees the account on irssi's JOIN (extended-join), on its
messages (account-tag) and in WHOIS (330). With a wrong password and
``sasl_disconnect_on_failure`` off, irssi shows the 904, stays connected and is logged in to
nothing. Every wait has a deadline; irssi is stopped and the server fixture stops the server
whatever happens.
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
from tests.irssiclient import Irssi, requires_irssi, started

pytestmark = requires_irssi

Connect = Callable[..., IRCClient]


@pytest.fixture(scope="module", params=[1, 4], ids=["1worker", "4workers"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[process.ServerProcess]:
    """A server whose store holds ``ACCOUNT``, at one worker and at four."""
    with running_with_account(tmp_path_factory.mktemp("data"), request.param) as srv:
        yield srv


def sasl_commands(server: process.ServerProcess, password: str) -> list[str]:
    """What the README tells a user to type (with the server's address and port)."""
    return [
        f"/network add -nick {ACCOUNT} -sasl_mechanism PLAIN -sasl_username {ACCOUNT}"
        f' -sasl_password "{password}" fastchat',
        f"/server add -network fastchat -notls {server.host} {server.port}",
        "/connect fastchat",
    ]


@pytest.fixture
def irssi_for(tmp_path: Path, server: process.ServerProcess) -> Iterator[Callable[..., Irssi]]:
    """``irssi_for(password, *settings)``: an irssi given ``settings`` (/set commands), then
    SASL ``ACCOUNT``/``password`` as a user would, and connected. Stopped at the end, and its
    nick free again before the next test takes it."""
    with contextlib.ExitStack() as stack:

        def start(password: str, *settings: str) -> Irssi:
            irssi = stack.enter_context(started(tmp_path / "irssi"))
            for command in [*settings, *sasl_commands(server, password)]:
                irssi.type(command)
            return irssi

        yield start
    wait_nicks_free(server.host, server.port, [ACCOUNT])


def registered(irssi: Irssi) -> list[str]:
    """The log once the welcome is in it: SASL's outcome comes before it."""
    irssi.wait_log(lambda line: "Welcome to" in line, "the welcome")
    return irssi.log()


def whois_self(irssi: Irssi) -> list[list[str]]:
    """irssi's own ``/whois``, each line split in words after irssi's ``-!-``:
    ``["account", ":", "name"]``."""
    irssi.type(f"/whois {ACCOUNT}")
    irssi.wait_log(lambda line: "End of WHOIS" in line, "WHOIS's end")
    return [line.split()[1:] for line in irssi.log() if line.startswith("-!- ")]


def test_irssi_logs_in_with_sasl(connect: Connect, irssi_for: Callable[..., Irssi]) -> None:
    """The account-tag, extended-join and WHOIS 330 show irssi's account; irssi shows the
    900 and the 903 before the welcome."""
    obs = observer(connect)
    irssi = irssi_for(PASSWORD)

    obs.expect(rf"^(@\S+ )?:{ACCOUNT}!\S+ JOIN #lobby {ACCOUNT} :")
    shown = registered(irssi)
    i900 = next((i for i, m in enumerate(shown) if f"logged in as {ACCOUNT}" in m), None)
    assert i900 is not None, irssi.dump()
    assert "SASL authentication succeeded" in shown[i900 + 1], irssi.dump()
    assert i900 < next(i for i, m in enumerate(shown) if "Welcome to" in m)

    obs.send(f"WHOIS {ACCOUNT}")
    obs.expect(rf" 330 observer {ACCOUNT} {ACCOUNT} :is logged in as$")
    irssi.type("/msg #lobby hello as an account")
    line = obs.expect(rf":{ACCOUNT}!\S+ PRIVMSG #lobby :hello as an account$").string
    assert f"account={ACCOUNT}" in tags(line), line
    assert ["account", ":", ACCOUNT] in whois_self(irssi), irssi.dump()
    assert not [m for m in irssi.log() if NICK_PROTECTION in m]


def test_irssi_with_a_wrong_password_is_not_logged_in(
    connect: Connect, irssi_for: Callable[..., Irssi]
) -> None:
    """A wrong password: 904, and with ``sasl_disconnect_on_failure`` off irssi registers
    anyway, logged in to nothing, and is asked to IDENTIFY for the registered nick."""
    obs = observer(connect)
    irssi = irssi_for("not the password", "/set sasl_disconnect_on_failure off")

    obs.expect(rf"^(@\S+ )?:{ACCOUNT}!\S+ JOIN #lobby \* :")
    shown = registered(irssi)
    assert any("SASL authentication failed" in m for m in shown), irssi.dump()
    assert not any("logged in as" in m or "succeeded" in m for m in shown), irssi.dump()

    obs.send(f"WHOIS {ACCOUNT}")
    assert not any(" 330 " in line for line in obs.expect_until(rf" 318 observer {ACCOUNT} "))
    irssi.type("/msg #lobby hello as nobody")
    line = obs.expect(rf":{ACCOUNT}!\S+ PRIVMSG #lobby :hello as nobody$").string
    assert not any(tag.startswith("account=") for tag in tags(line)), line
    irssi.wait_log(lambda m: NICK_PROTECTION in m, "NickServ's notice")
    assert not [m for m in whois_self(irssi) if m[:1] == ["account"]], irssi.dump()
