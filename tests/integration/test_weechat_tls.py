"""Issue 13: a real WeeChat connects over TLS with a client certificate and logs in with SASL
EXTERNAL from its own configuration, at one worker and at four.

The account and its certificate fingerprint are made before the server starts, as an
administrator would, with ``fastchat accounts create`` and ``fastchat accounts cert add``.
WeeChat is then configured with the commands the README gives: TLS on, its certificate (one
PEM file holding the certificate and its key), the server's certificate pinned by its
SHA-256 fingerprint (the server's certificate is self-signed here), ``sasl_mechanism
external``, then ``/connect``. WeeChat 3.x calls the TLS options ``ssl*``, 4.x ``tls*``: both
are set (the other version reports the names it does not know in its core buffer only).

Proved on both sides: WeeChat's server buffer shows the 900 and 903 before the welcome, and
its own ``/whois`` the account and the certificate's fingerprint (276); a raw observer sees
the account on its JOIN (extended-join) and in WHOIS (330).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fastchat.server.runtime.tls import SELF_SIGNED_CERT
from tests.accountserver import (
    ACCOUNT,
    CertAccount,
    fingerprint,
    observer,
    running_with_cert_account,
)
from tests.ircclient import IRCClient, wait_nicks_free
from tests.weechatclient import WeeChat, requires_weechat, started

pytestmark = requires_weechat

SERVER = "irc.server.fastchat"
Connect = Callable[..., IRCClient]


@pytest.fixture(scope="module", params=[1, 4], ids=["1worker", "4workers"])
def setup(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CertAccount]:
    data, client = tmp_path_factory.mktemp("data"), tmp_path_factory.mktemp("client")
    with running_with_cert_account(data, client, request.param) as setup:
        yield setup


def tls_commands(setup: CertAccount, nick: str, client_pem: Path) -> list[str]:
    """What the README tells a WeeChat user to type (both versions' option names)."""
    srv = setup.server
    server_pem = (setup.data / SELF_SIGNED_CERT).read_bytes()
    commands = [f"/server add fastchat {srv.host}/{srv.tls_port}"]
    for tls in ("ssl", "tls"):
        commands += [
            f"/set irc.server.fastchat.{tls} on",
            f"/set irc.server.fastchat.{tls}_cert {client_pem}",
            f"/set irc.server.fastchat.{tls}_fingerprint {fingerprint(server_pem)}",
        ]
    return [
        *commands,
        f"/set irc.server.fastchat.nicks {nick}",
        "/set irc.server.fastchat.autoreconnect off",
        "/set irc.server.fastchat.sasl_mechanism external",
        "/set irc.server.fastchat.sasl_fail continue",
        "/set irc.server.fastchat.anti_flood_prio_high 0",
        "/set irc.server.fastchat.anti_flood_prio_low 0",
        "/set irc.server.fastchat.anti_flood 0",
        "/connect fastchat",
    ]


@pytest.fixture
def connect(setup: CertAccount) -> Iterator[Connect]:
    srv = setup.server
    clients: list[IRCClient] = []

    def make(nick: str | None = None, **kw: object) -> IRCClient:
        client = IRCClient(srv.host, srv.port, nick, **kw)  # type: ignore[arg-type]
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def messages(weechat: WeeChat) -> list[str]:
    return [message for _, message in weechat.log(SERVER)]


def test_weechat_logs_in_with_sasl_external_over_tls(
    setup: CertAccount, connect: Connect, tmp_path: Path
) -> None:
    srv, certfp = setup.server, setup.certfp
    # WeeChat takes one PEM file holding the certificate and its key
    client_pem = tmp_path / "weechat.pem"
    client_pem.write_bytes(setup.cert.read_bytes() + setup.key.read_bytes())
    client_pem.chmod(0o600)
    obs = observer(connect)
    with contextlib.ExitStack() as stack:
        weechat = stack.enter_context(started(tmp_path, []))
        # typed through the fifo, as a user would (and after the fifo exists)
        for command in tls_commands(setup, ACCOUNT, client_pem):
            weechat.send("core.weechat", command)
        obs.expect(rf"^(@\S+ )?:{ACCOUNT}!\S+ JOIN #lobby {ACCOUNT} :")
        weechat.wait_log(SERVER, lambda p, m: m.startswith("Welcome to"), "the welcome")
        shown = messages(weechat)
        logged_in = f"You are now logged in as {ACCOUNT} ({ACCOUNT}!"
        i900 = next((i for i, m in enumerate(shown) if m.startswith(logged_in)), None)
        assert i900 is not None, weechat.dump()
        assert shown[i900 + 1] == "SASL authentication successful", weechat.dump()
        assert i900 < next(i for i, m in enumerate(shown) if m.startswith("Welcome to"))

        obs.send(f"WHOIS {ACCOUNT}")
        lines = obs.expect_until(rf" 318 observer {ACCOUNT} ")
        assert any(f" 330 observer {ACCOUNT} {ACCOUNT} :is logged in as" in x for x in lines)
        assert not any(" 276 " in x for x in lines)  # not to others

        weechat.send(SERVER, f"/whois {ACCOUNT}")
        head = f"[{ACCOUNT}] "
        weechat.wait_log(SERVER, lambda p, m: m.startswith(head) and "End of" in m, "WHOIS end")
        mine = [m for m in messages(weechat) if m.startswith(head)]
        assert f"{head}has client certificate fingerprint {certfp}" in mine, weechat.dump()
        assert f"{head}is logged in as {ACCOUNT}" in mine, weechat.dump()
        assert weechat.errors() == []
    wait_nicks_free(srv.host, srv.port, [ACCOUNT])
