"""Server configuration: every knob of ``fastchat serve``, its default and its flag.

Owns: the :class:`Config` value and its command-line form.
Must never: open sockets or read files other than the MOTD file named in the config.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Config:
    host: str = "0.0.0.0"
    port: int = 6667
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    server_name: bytes = b"fastchat.local"
    network: bytes = b"fastchat"
    autojoin: tuple[bytes, ...] = (b"#lobby",)
    password: bytes | None = None
    motd: tuple[bytes, ...] = (b"Welcome to fastchat.",)
    # limits (announced in ISUPPORT where IRC has a token)
    nicklen: int = 30
    channellen: int = 50
    topiclen: int = 390
    kicklen: int = 255
    awaylen: int = 200
    max_channels: int = 50  # CHANLIMIT per user
    max_targets: int = 4  # TARGMAX for PRIVMSG/NOTICE/JOIN/PART...
    max_clients: int = 0  # 0: no limit
    max_clients_per_ip: int = 0  # 0: no limit
    # protection
    sendq: int = 1 << 20  # bytes queued for a client before "SendQ exceeded"
    recvq: int = 8192  # unprocessed input before "Excess Flood"
    flood_control: bool = True
    flood_burst: int = 10  # lines a client may send at once
    flood_rate: float = 5.0  # lines per second sustained
    registration_timeout: float = 60.0
    ping_interval: float = 120.0  # idle seconds before the server sends PING
    ping_timeout: float = 60.0  # seconds to answer that PING
    shutdown_grace: float = 3.0  # seconds for workers to flush on SIGTERM
    log_level: str = "INFO"
    test_hooks: bool = False  # enables fault-injection commands; only for the test suite


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = Config()
    a = parser.add_argument
    a("--host", default=d.host, help="address to listen on (default %(default)s)")
    a("--port", type=int, default=d.port, help="TCP port; 0 picks a free one (default %(default)s)")
    a(
        "--workers",
        type=int,
        default=d.workers,
        help="worker processes (default: CPU count, %(default)s)",
    )
    a(
        "--server-name",
        default=d.server_name.decode(),
        help="server name in replies (default %(default)s)",
    )
    a(
        "--network",
        default=d.network.decode(),
        help="NETWORK name in ISUPPORT (default %(default)s)",
    )
    a(
        "--autojoin",
        default=",".join(c.decode() for c in d.autojoin),
        help="comma-separated channels every client joins on registration; '' for none (default %(default)s)",
    )
    a("--password", default=None, help="connection password clients must send with PASS")
    a("--motd-file", default=None, help="file whose lines make the message of the day")
    a("--nicklen", type=int, default=d.nicklen, help="max nick length (default %(default)s)")
    a(
        "--channellen",
        type=int,
        default=d.channellen,
        help="max channel name length (default %(default)s)",
    )
    a("--topiclen", type=int, default=d.topiclen, help="max topic length (default %(default)s)")
    a(
        "--max-channels",
        type=int,
        default=d.max_channels,
        help="channels per user (default %(default)s)",
    )
    a(
        "--max-targets",
        type=int,
        default=d.max_targets,
        help="targets per PRIVMSG/NOTICE (default %(default)s)",
    )
    a(
        "--max-clients",
        type=int,
        default=d.max_clients,
        help="max connections per worker-set, 0 = no limit",
    )
    a(
        "--max-clients-per-ip",
        type=int,
        default=d.max_clients_per_ip,
        help="max connections from one IP, 0 = no limit",
    )
    a(
        "--sendq",
        type=int,
        default=d.sendq,
        help="bytes queued to a client before disconnect (default %(default)s)",
    )
    a(
        "--recvq",
        type=int,
        default=d.recvq,
        help="unprocessed input bytes before disconnect (default %(default)s)",
    )
    a("--no-flood-control", action="store_true", help="turn flood control off (benchmarks)")
    a(
        "--flood-burst",
        type=int,
        default=d.flood_burst,
        help="lines a client may send at once (default %(default)s)",
    )
    a(
        "--flood-rate",
        type=float,
        default=d.flood_rate,
        help="sustained lines per second (default %(default)s)",
    )
    a(
        "--registration-timeout",
        type=float,
        default=d.registration_timeout,
        help="seconds to register (default %(default)s)",
    )
    a(
        "--ping-interval",
        type=float,
        default=d.ping_interval,
        help="idle seconds before PING (default %(default)s)",
    )
    a(
        "--ping-timeout",
        type=float,
        default=d.ping_timeout,
        help="seconds to answer PING (default %(default)s)",
    )
    a(
        "--log-level",
        default=d.log_level,
        help="DEBUG, INFO, WARNING or ERROR (default %(default)s)",
    )
    a("--test-hooks", action="store_true", help=argparse.SUPPRESS)


def from_args(args: argparse.Namespace) -> Config:
    motd = Config().motd
    if args.motd_file:
        with open(args.motd_file, "rb") as f:
            motd = tuple(f.read().splitlines())
    return Config(
        host=args.host,
        port=args.port,
        workers=max(1, args.workers),
        server_name=args.server_name.encode(),
        network=args.network.encode(),
        autojoin=tuple(c.encode() for c in args.autojoin.split(",") if c),
        password=args.password.encode() if args.password else None,
        motd=motd,
        nicklen=args.nicklen,
        channellen=args.channellen,
        topiclen=args.topiclen,
        max_channels=args.max_channels,
        max_targets=args.max_targets,
        max_clients=args.max_clients,
        max_clients_per_ip=args.max_clients_per_ip,
        sendq=args.sendq,
        recvq=args.recvq,
        flood_control=not args.no_flood_control,
        flood_burst=args.flood_burst,
        flood_rate=args.flood_rate,
        registration_timeout=args.registration_timeout,
        ping_interval=args.ping_interval,
        ping_timeout=args.ping_timeout,
        log_level=args.log_level.upper(),
        test_hooks=args.test_hooks,
    )
