"""TLS on its own listener (issue 13, item 1), against the real server with one and with four
workers: a TLS client is an ordinary client; what is not TLS on the TLS port, TLS on the plain
port and a handshake that stalls each get a defined end, and nobody else notices."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator

import pytest

from fastchat.server.runtime import process
from fastchat.server.runtime.tls import SELF_SIGNED_CERT, write_self_signed
from tests.ircclient import IRCClient, wait_nicks_free

HANDSHAKE_TIMEOUT = 1.0  # --tls-handshake-timeout here (the worker checks once a second)


@pytest.fixture(scope="module", params=[1, 4], ids=["1worker", "4workers"])
def server(request: pytest.FixtureRequest) -> Iterator[process.ServerProcess]:
    """A server with a TLS port, its self-signed certificate made in its own data directory."""
    args = ["--tls-port", "-1", "--tls-handshake-timeout", str(HANDSHAKE_TIMEOUT)]
    with process.running(args, workers=request.param) as srv:
        assert srv.tls_port, srv.log_text()
        yield srv


def trusting(server: process.ServerProcess) -> ssl.SSLContext:
    """A client context that verifies the server against its self-signed certificate."""
    assert server.own_data_dir is not None
    return ssl.create_default_context(cafile=os.path.join(server.own_data_dir, SELF_SIGNED_CERT))


@pytest.fixture
def connect(server: process.ServerProcess) -> Iterator[Callable[..., IRCClient]]:
    """``connect("alice", tls=True)``: a registered client, over TLS or not; closed at the end."""
    clients: list[IRCClient] = []

    def make(nick: str | None = None, *, tls: bool = False, **kw: object) -> IRCClient:
        port = server.tls_port if tls else server.port
        context = trusting(server) if tls else None
        client = IRCClient(server.host, port, nick, tls=context, **kw)  # type: ignore[arg-type]
        clients.append(client)
        return client

    yield make
    nicks = [c.nick for c in clients if c.nick]
    for client in clients:
        client.close()
    if nicks:
        wait_nicks_free(server.host, server.port, nicks)


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """True if the server closes ``sock`` (EOF or reset) within ``seconds``, reading and
    discarding whatever it says first."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            if not sock.recv(4096):
                return True
        except TimeoutError:
            return False
        except OSError:
            return True
    return False


def client_hello() -> bytes:
    """The first flight of a real TLS client, made without a socket."""
    context = ssl.create_default_context()
    tls = context.wrap_bio(ssl.MemoryBIO(), outgoing := ssl.MemoryBIO(), server_hostname="x")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def test_tls_client_registers_joins_and_talks_with_a_plain_client(connect) -> None:
    """A TLS client, verifying the server against its self-signed certificate, registers,
    is joined to #lobby, and exchanges messages with a plain TCP client both ways."""
    secure = connect("secure", tls=True)
    assert isinstance(secure.sock, ssl.SSLSocket)
    assert secure.sock.version() in ("TLSv1.2", "TLSv1.3")
    plain = connect("plain")
    secure.send("JOIN #tls")
    secure.expect(r" 366 secure #tls ")
    plain.send("JOIN #tls")
    secure.expect(r":plain!\S+ JOIN #tls$")
    plain.expect(r" 366 plain #tls ")
    secure.send("PRIVMSG #tls :hello from TLS")
    plain.expect(r":secure!\S+ PRIVMSG #tls :hello from TLS$")
    plain.send("PRIVMSG #tls :hello from TCP")
    secure.expect(r":plain!\S+ PRIVMSG #tls :hello from TCP$")
    plain.send("PRIVMSG secure :" + "x" * 400)  # a private message, longer than a record's start
    secure.expect(r":plain!\S+ PRIVMSG secure :x{400}$")


def test_tls_client_quits_reads_its_error_and_others_see_the_quit(connect) -> None:
    """RFC 2812 §3.1.7 over TLS: the ERROR that acknowledges QUIT reaches the TLS client
    before the connection closes; channel members see the QUIT."""
    secure = connect("leaver", tls=True)
    plain = connect("stayer")
    secure.sync()
    secure.send("QUIT :bye over TLS")
    secure.expect(r"^ERROR :")
    plain.expect(r":leaver!\S+ QUIT :Quit: bye over TLS$")
    assert secure.next_line(timeout=5) is None and secure.closed


def test_tls_client_gets_a_burst_larger_than_a_record(connect) -> None:
    """Many lines at once both ways (more than one TLS record, more than one read)."""
    secure = connect("bulk", tls=True)
    plain = connect("watcher")
    secure.send("JOIN #bulk")
    secure.expect(r" 366 bulk #bulk ")
    plain.send("JOIN #bulk")
    plain.expect(r" 366 watcher #bulk ")
    secure.sync()
    text = "y" * 300
    plain.send_raw(b"".join(b"PRIVMSG #bulk :%d %s\r\n" % (i, text.encode()) for i in range(8)))
    for i in range(8):
        secure.expect(rf":watcher!\S+ PRIVMSG #bulk :{i} {text}$")
    secure.sync()


def test_plaintext_on_the_tls_port_is_closed_and_nobody_notices(connect, server) -> None:
    """A client that speaks IRC to the TLS port fails the handshake and is closed, at once;
    the clients already there go on as before."""
    secure = connect("calm", tls=True)
    plain = connect("calm2")
    with socket.create_connection((server.host, server.tls_port), timeout=5) as sock:
        sock.sendall(b"NICK oops\r\nUSER oops 0 * :oops\r\n")
        assert closed_within(sock, 5.0)
    secure.sync()
    plain.sync()
    secure.send("PRIVMSG calm2 :still here")
    plain.expect(r":calm!\S+ PRIVMSG calm2 :still here$")


@pytest.mark.parametrize("sent", ["nothing", "half a ClientHello"])
def test_a_stalled_handshake_is_closed_after_the_timeout(connect, server, sent: str) -> None:
    """A connection to the TLS port that stops in the middle of its handshake (or never
    starts it) is closed after --tls-handshake-timeout (checked once a second), not before."""
    secure = connect("patient", tls=True)
    with socket.create_connection((server.host, server.tls_port), timeout=5) as sock:
        if sent != "nothing":
            hello = client_hello()
            sock.sendall(hello[: len(hello) // 2])
        started = time.monotonic()
        assert not closed_within(sock, HANDSHAKE_TIMEOUT * 0.5)
        assert closed_within(sock, HANDSHAKE_TIMEOUT + 3.0)
        assert time.monotonic() - started >= HANDSHAKE_TIMEOUT * 0.9
    secure.sync()


def test_tls_on_the_plain_port_gets_an_error_and_is_closed(connect, server) -> None:
    """A TLS client on the plain port: its ClientHello is no IRC. It gets ``ERROR`` (in
    plain text, which it will take for a failed handshake) and is closed at once."""
    plain = connect("bystander")
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(client_hello())
        sock.settimeout(5)
        said = b""
        while chunk := sock.recv(4096):
            said += chunk
        assert said.startswith(b"ERROR :Closing link: ")
        assert b"This port does not speak TLS" in said
    plain.sync()
    # and a real TLS client there fails its handshake, rather than hanging
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((server.host, server.port), timeout=5) as sock,
        pytest.raises((ssl.SSLError, OSError)),
    ):
        context.wrap_socket(sock, server_hostname="x")


def test_the_self_signed_certificate_is_made_once_and_reused() -> None:
    """Without --tls-cert the first start makes a certificate in the data directory and says
    so; the next start with that directory uses the same one."""
    data_dir = tempfile.mkdtemp(prefix="fastchat-tls-")
    args = ["--tls-port", "-1", "--data-dir", data_dir]
    cert_path = os.path.join(data_dir, SELF_SIGNED_CERT)
    try:
        with process.running(args, workers=1) as first:
            assert "made a self-signed certificate" in first.log_text()
            with open(cert_path, "rb") as f:
                made = f.read()
            assert b"BEGIN CERTIFICATE" in made
        with process.running(args, workers=1) as second:
            assert "made a self-signed certificate" not in second.log_text()
            with open(cert_path, "rb") as f:
                assert f.read() == made
            context = ssl.create_default_context(cafile=cert_path)
            with IRCClient(second.host, second.tls_port, "again", tls=context) as client:
                client.sync()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def test_tls_before_1_2_is_refused(server) -> None:
    """TLS 1.2 at least: a client that offers TLS 1.1 at most fails its handshake."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with warnings.catch_warnings():  # (deprecated: which is the point)
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1
            context.maximum_version = ssl.TLSVersion.TLSv1_1
    except (ValueError, ssl.SSLError):
        pytest.skip("this OpenSSL cannot even offer TLS 1.1")
    with (
        socket.create_connection((server.host, server.tls_port), timeout=5) as sock,
        pytest.raises((ssl.SSLError, OSError)),
    ):
        context.wrap_socket(sock, server_hostname="x")


@pytest.mark.parametrize("workers", [1, 4])
def test_a_slow_tls_reader_gets_everything_in_order(workers: int) -> None:
    """Output a TLS client does not read at once waits in its output buffer (the kernel's
    buffer full: SSLWantWriteError) and reaches it whole and in order once it reads."""
    args = ["--tls-port", "-1", "--no-flood-control", "--sendq", str(64 << 20)]
    with (
        process.running(args, workers=workers) as srv,
        IRCClient(srv.host, srv.port, "flooder") as flooder,
        IRCClient(srv.host, srv.tls_port, "slow", tls=trusting(srv), rcvbuf=4096) as slow,
    ):
        slow.send("JOIN #flood")
        slow.expect(r" 366 slow #flood ")
        flooder.send("JOIN #flood")
        flooder.expect(r" 366 flooder #flood ")
        slow.expect(r":flooder!\S+ JOIN #flood$")
        count, text = 15000, "z" * 400  # 6.5 MB: more than the kernel buffers (4 MB at most)
        flooder.send_raw(
            b"".join(b"PRIVMSG #flood :%d %s\r\n" % (i, text.encode()) for i in range(count))
        )
        flooder.sync()
        # (one pattern for every line, its number checked: 15,000 patterns compiled one by one
        # took most of this test's time)
        each = rf":flooder!\S+ PRIVMSG #flood :(\d+) {text}$"
        for i in range(count):
            assert int(slow.expect(each)[1]) == i
        slow.sync()


def test_given_certificate_files_are_used_and_none_is_made() -> None:
    """--tls-cert and --tls-key: the server presents that certificate (a client that trusts
    only it connects) and makes none in its data directory."""
    own = tempfile.mkdtemp(prefix="fastchat-tls-own-")
    cert, key = os.path.join(own, "cert.pem"), os.path.join(own, "key.pem")
    write_self_signed(cert, key, "fastchat.local")
    try:
        args = ["--tls-port", "-1", "--tls-cert", cert, "--tls-key", key]
        with process.running(args, workers=1) as srv:
            assert srv.own_data_dir is not None
            assert not os.path.exists(os.path.join(srv.own_data_dir, SELF_SIGNED_CERT))
            context = ssl.create_default_context(cafile=cert)
            with IRCClient(srv.host, srv.tls_port, "owncert", tls=context) as client:
                client.sync()
    finally:
        shutil.rmtree(own, ignore_errors=True)


def test_a_missing_certificate_stops_the_start() -> None:
    """A --tls-cert that cannot be read: the server says so and does not start."""
    with pytest.raises(RuntimeError, match=r"cannot start: .*No such file"):
        process.start(["--tls-port", "-1", "--tls-cert", "/nonexistent/cert.pem"], workers=1)


def test_tls_connections_spread_over_the_workers(connect, server) -> None:
    """Each worker has its own TLS socket (SO_REUSEPORT), as for the plain port: with several
    workers, TLS clients land on more than one of them, and talk across them."""
    clients = [connect(f"spread{i}", tls=True) for i in range(12)]
    holders = {server.worker_of(c.sock.getsockname()[1]) for c in clients}
    assert None not in holders
    assert len(holders) > 1 if server.workers > 1 else len(holders) == 1, holders
    clients[0].send("PRIVMSG #lobby :to everyone")
    for c in clients[1:]:
        c.expect(r":spread0!\S+ PRIVMSG #lobby :to everyone$")


def test_stalled_handshakes_count_towards_the_limit_per_address() -> None:
    """--max-clients-per-ip holds for connections still shaking hands: beyond it, another
    TLS connection from that address is closed at once; once they are gone, one gets in."""
    args = ["--tls-port", "-1", "--max-clients-per-ip", "2", "--tls-handshake-timeout", "30"]
    with process.running(args, workers=1) as srv:
        context = trusting(srv)
        stalled = [socket.create_connection((srv.host, srv.tls_port), timeout=5) for _ in "ab"]
        try:
            with IRCClient(srv.host, srv.port, "plainprobe") as probe:  # (the worker has them)
                probe.sync()
            with (
                socket.create_connection((srv.host, srv.tls_port), timeout=5) as sock,
                pytest.raises((ssl.SSLError, OSError)),
            ):
                context.wrap_socket(sock, server_hostname="fastchat.local")
        finally:
            for sock in stalled:
                sock.close()
        with IRCClient(srv.host, srv.port, "plainprobe2") as probe:  # (it has seen them go)
            probe.sync()
        with IRCClient(srv.host, srv.tls_port, "welcome", tls=context) as client:
            client.sync()
