"""Issue 13: a real irssi connects over TLS with a client certificate and logs in with SASL
EXTERNAL from its own configuration, at one worker and at four.

The account and its certificate's fingerprint are made before the server starts with
``fastchat accounts create`` and ``fastchat accounts cert add`` (``tests/accountserver.py``).
irssi (``tests/irssiclient.py``) is typed the commands the README gives: ``/network add``
with ``-sasl_mechanism EXTERNAL``, ``/server add`` with ``-tls``, its certificate and key,
and the server's self-signed certificate pinned (``-tls_pinned_cert``, its SHA-256 as irssi
writes it: upper case, colons), ``/connect``. Proved on both sides: irssi shows the 900 and
its line for the 903 before the welcome, and the account in its own ``/whois``; a raw
observer sees the account on irssi's JOIN (extended-join) and in WHOIS (330).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

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
from tests.irssiclient import requires_irssi, started

pytestmark = requires_irssi

Connect = Callable[..., IRCClient]


@pytest.fixture(scope="module", params=[1, 4], ids=["1worker", "4workers"])
def setup(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CertAccount]:
    data, client = tmp_path_factory.mktemp("data"), tmp_path_factory.mktemp("client")
    with running_with_cert_account(data, client, request.param) as setup:
        yield setup


def tls_commands(setup: CertAccount) -> list[str]:
    """What the README tells an irssi user to type (with the test server's address)."""
    srv = setup.server
    hexa = fingerprint((setup.data / SELF_SIGNED_CERT).read_bytes()).upper()
    pinned = ":".join(hexa[i : i + 2] for i in range(0, len(hexa), 2))
    return [
        f"/network add -nick {ACCOUNT} -sasl_mechanism EXTERNAL fastchat",
        f"/server add -network fastchat -tls -tls_cert {setup.cert} -tls_pkey {setup.key}"
        f" -tls_pinned_cert {pinned} -notls_verify {srv.host} {srv.tls_port}",
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


def test_irssi_logs_in_with_sasl_external_over_tls(
    setup: CertAccount, connect: Connect, tmp_path
) -> None:
    obs = observer(connect)
    with contextlib.ExitStack() as stack:
        irssi = stack.enter_context(started(tmp_path / "irssi"))
        for command in tls_commands(setup):
            irssi.type(command)
        obs.expect(rf"^(@\S+ )?:{ACCOUNT}!\S+ JOIN #lobby {ACCOUNT} :")
        irssi.wait_log(lambda line: "Welcome to" in line, "the welcome")
        shown = irssi.log()
        i900 = next((i for i, m in enumerate(shown) if f"logged in as {ACCOUNT}" in m), None)
        assert i900 is not None, irssi.dump()
        assert "SASL authentication succeeded" in shown[i900 + 1], irssi.dump()
        assert i900 < next(i for i, m in enumerate(shown) if "Welcome to" in m)

        obs.send(f"WHOIS {ACCOUNT}")
        obs.expect(rf" 330 observer {ACCOUNT} {ACCOUNT} :is logged in as$")
        irssi.type(f"/whois {ACCOUNT}")
        irssi.wait_log(lambda line: "End of WHOIS" in line, "WHOIS's end")
        mine = [line.split()[1:] for line in irssi.log() if line.startswith("-!- ")]
        assert ["account", ":", ACCOUNT] in mine, irssi.dump()
        assert any(setup.certfp in line for line in irssi.log()), irssi.dump()  # its 276
    wait_nicks_free(setup.server.host, setup.server.port, [ACCOUNT])
