"""Server configuration: every setting of ``fastchat serve``, declared once.

Each field of :class:`Config` is declared with :func:`setting`, which records, next to its
type and default, its help, whether a config reload may change it, and how its raw value (a
flag's argument, a config file's value) becomes the Config value. From those rows come the
``argparse`` flags (:func:`add_arguments`), :func:`from_args`, the config-file keys
(:attr:`Setting.key`, :func:`from_mapping`; the file itself is read by :mod:`.configfile`),
the table of settings in README.md (:func:`markdown_table`; ``python -m
fastchat.server.config --markdown``) and fastchat.example.toml (:func:`example_file`;
``--example``). ``make settings-doc`` rewrites both documents.

Owns: the :class:`Config` value, its command-line form and its file keys.
Must never: open sockets, read the clock, or read files other than the MOTD file the config
names (and, run as ``python -m fastchat.server.config --update-readme FILE`` or
``--update-example FILE``, that FILE).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import textwrap
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from fastchat.server import passwords

T = TypeVar("T")

RawType = type[int] | type[float] | type[str] | type[bool]
"""What a flag's argument or a config file's value is, before conversion."""

_PLAIN_TYPES: tuple[RawType, ...] = (int, float, str, bool)
_BUILTIN_MOTD = (b"Welcome to fastchat.",)
_SETTING = "fastchat.setting"  # the key of a Setting in its dataclass field's metadata

#: The value of a setting given as ``auto`` (``--workers``, ``--max-clients``): the server
#: decides at start, from the machine (fastchat.server.runtime.limits), and replaces it with
#: what it picked before any process uses the config (:func:`with_auto`).
AUTO = -1


class ConfigError(ValueError):
    """A setting was given a value it cannot take; the message names the setting's key."""


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting: the :class:`Config` attribute ``name``, its flag and its file key.

    ``type`` is the raw value's type, on the command line and in a config file; ``convert``
    turns a raw value into the Config value (none: the raw value is the value).
    """

    name: str
    key: str
    type: RawType
    default: object
    help: str
    reloadable: bool
    convert: Callable[[Any], object] | None = None
    metavar: str = ""
    shown_default: str = ""  # how the default reads in help, where printing it would mislead
    inverted: bool = False  # a bool whose flag, --no-KEY, turns it off
    hidden: bool = False  # left out of --help, the README and the example config file
    path: bool = False  # a file name: in a config file, relative to the file's folder
    auto: bool = False  # an int that also takes the word "auto" (:data:`AUTO`)
    example: object = None  # the raw value fastchat.example.toml shows, where the default
    # cannot be written there (it depends on the machine, or is built in)

    @property
    def flag(self) -> str:
        """The command-line flag: the key with ``-`` for ``_``, after ``--no-`` if inverted."""
        return "--" + ("no-" if self.inverted else "") + self.key.replace("_", "-")

    def value(self, raw: object) -> object:
        """The Config value of ``raw``, a flag's argument or a config file's value.

        Raises :class:`ConfigError`, naming the key, for a value of the wrong type or one the
        conversion refuses (an unreadable MOTD file)."""
        if self.auto and raw == "auto":
            return AUTO
        if not _is_raw(raw, self.type):
            raise ConfigError(
                f"setting {self.key!r}: expected {self.type.__name__}, "
                f"got {type(raw).__name__} {raw!r}"
            )
        if self.type is float:
            raw = float(typing.cast(float, raw))  # a file may say 5 for 5.0
        if self.convert is None:
            return raw
        try:
            return self.convert(raw)
        except (OSError, ValueError) as e:
            raise ConfigError(f"setting {self.key!r}: {e}") from e


def _is_raw(raw: object, kind: RawType) -> bool:
    # bool is an int to isinstance; a setting that wants a number must not take True
    if kind is bool or isinstance(raw, bool):
        return kind is bool and isinstance(raw, bool)
    if kind is float:
        return isinstance(raw, int | float)
    return isinstance(raw, kind)


def setting(
    default: T,
    help: str,
    *,
    reloadable: bool,
    key: str = "",
    type: RawType | None = None,
    convert: Callable[[Any], T] | None = None,
    metavar: str = "",
    shown_default: str = "",
    inverted: bool = False,
    hidden: bool = False,
    path: bool = False,
    auto: bool = False,
    example: object = None,
) -> T:
    """A :class:`Config` field with its :class:`Setting` row (without the name, which the
    field gives). ``key`` defaults to the field's name, ``type`` to the field's type.

    Typed as returning the default, as :func:`dataclasses.field` is, so that the dataclass
    and mypy see an ordinary default."""
    row = Setting(
        name="",
        key=key,
        type=type or int,  # replaced by the field's type when not given, see _rows()
        default=default,
        help=help,
        reloadable=reloadable,
        convert=convert,
        metavar=metavar,
        shown_default=shown_default,
        inverted=inverted,
        hidden=hidden,
        path=path,
        auto=auto,
        example=example,
    )
    field: Any = dataclasses.field(default=default, metadata={_SETTING: (row, type)})
    return typing.cast(T, field)


def _at_least_one(n: int) -> int:
    return max(1, n)


def _at_least_zero(n: int) -> int:
    return max(0, n)


#: The most ``max_line`` may be: a client's line is read whole before it is parsed
MAX_LINE_LIMIT = 16384


def _line_length(n: int) -> int:
    if not 512 <= n <= MAX_LINE_LIMIT:
        raise ValueError(f"{n} is not between 512 (RFC 1459) and {MAX_LINE_LIMIT}")
    return n


def _nick_protection(text: str) -> str:
    if text not in ("off", "warn", "rename"):
        raise ValueError("expected off, warn or rename")
    return text


def _placement(text: str) -> str:
    if text not in ("affine", "kernel"):
        raise ValueError("expected affine or kernel")
    return text


def _channel_list(text: str) -> tuple[bytes, ...]:
    return tuple(c.encode() for c in text.split(",") if c)


def _origin_list(text: str) -> tuple[str, ...]:
    """``https://a.example,http://b.example:8080`` or ``*``: origins as browsers send them,
    lowercased, without a trailing slash."""
    origins = tuple(o.strip().lower().rstrip("/") for o in text.split(",") if o.strip())
    for origin in origins:
        if origin != "*" and "://" not in origin:
            raise ValueError(f"expected an origin such as https://chat.example.org, got {origin!r}")
    return origins


def _maybe_password(text: str) -> bytes | None:
    return text.encode() if text else None


def _maybe_path(text: str) -> str | None:
    return text or None


def _maybe_smtp_server(text: str) -> tuple[str, int] | None:
    """``host:port``, ``host`` (port 25), ``[v6]:port``; '' for none."""
    if not text:
        return None
    host, port = text, "25"
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"expected HOST:PORT, got {text!r}")
        port = rest[1:] or port
    elif text.count(":") == 1:
        host, port = text.split(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def _maybe_address(text: str) -> str:
    if text and ("@" not in text.strip("@") or any(c.isspace() for c in text)):
        raise ValueError(f"expected an email address, got {text!r}")
    return text


#: The K-line file's name when the config file does not say: in the config file's folder.
DEFAULT_KLINE_FILE = "klines.toml"


def _read_motd(path: str) -> tuple[bytes, ...]:
    if not path:
        return _BUILTIN_MOTD
    with open(path, "rb") as f:
        return tuple(f.read().splitlines())


#: What an operator may be allowed to do (an ``[[oper]]`` table's ``privileges``; a command
#: row's ``privilege``): KILL; WALLOPS; REHASH; KLINE/UNKLINE; channel rules overridden where
#: Modern IRC lets operators (``override``); invisible users and secret channels seen in
#: WHO, WHOIS, NAMES and LIST (``see``); CHGHOST (``chghost``).
PRIVILEGES = frozenset(
    {"accounts", "kill", "wallops", "rehash", "kline", "override", "see", "chghost"}
)


class OperBlock(NamedTuple):
    """An operator account, from a ``[[oper]]`` table of the config file.

    ``password`` is a hash as ``fastchat mkpasswd`` prints it (:mod:`.passwords`); ``hosts``
    are the ``user@host`` masks an OPER must come from; ``privileges`` name what the operator
    may do (``kill``, ``wallops``, ``rehash``, ...: the ``privilege`` of command rows)."""

    name: bytes
    password: str
    hosts: tuple[bytes, ...] = (b"*@*",)
    privileges: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Config:
    """Everything ``fastchat serve`` can be told. One field per setting, in table order;
    lists of tables (``opers``) come only from the config file."""

    # listeners and processes
    host: str = setting("0.0.0.0", "address to listen on", reloadable=False, metavar="ADDRESS")
    port: int = setting(
        6667, "TCP port; 0 picks a free one (the ready line tells which)", reloadable=False
    )
    workers: int = setting(
        AUTO,
        "worker processes; auto: 1 below 4 usable cores, else the cores less 2 (one for the "
        "hub, one for the store's writer), at most 8; the log says what it picked",
        reloadable=False,
        convert=_at_least_one,
        auto=True,
        shown_default="auto",
        example="auto",
    )
    placement: str = setting(
        "affine",
        "which worker serves a client: `kernel` (where SO_REUSEPORT put it) or `affine` "
        "(after it joins a channel, a plain TCP client is handed to the worker holding most "
        "of its channels' members, so a message visits fewer workers; see README)",
        reloadable=False,
        convert=_placement,
        metavar="MODE",
    )
    placement_interval: float = setting(
        30.0,
        "with `placement = affine`, the least time between two moves of one client",
        reloadable=False,
        metavar="SECONDS",
    )
    tls_port: int = setting(
        0,
        "TCP port of the TLS listener (TLS 1.2 or later); 0 for none, -1 picks a free one "
        "(a line before the ready line tells which)",
        reloadable=False,
    )
    tls_cert: str | None = setting(
        None,
        "PEM file of the TLS certificate (chain); '' or none: a self-signed certificate for "
        "the server name, made once in the data directory. Read again at SIGHUP and REHASH",
        reloadable=True,
        type=str,
        convert=_maybe_path,
        metavar="FILE",
        path=True,
        example="",
    )
    tls_key: str | None = setting(
        None,
        "PEM file of the TLS certificate's private key; none: the key is in --tls-cert",
        reloadable=True,
        type=str,
        convert=_maybe_path,
        metavar="FILE",
        path=True,
        example="",
    )
    sts_duration: int = setting(
        -1,
        "IRCv3 sts: advertise a Strict Transport Security policy of this many seconds "
        "(plain connections are told the TLS port, TLS ones the duration; 0 tells clients to "
        "drop the policy); -1 for none. Needs --tls-port and a certificate clients verify: "
        "refused with the self-signed one",
        reloadable=False,
        metavar="SECONDS",
    )
    sts_preload: bool = setting(
        False,
        "IRCv3 sts: add 'preload' to the policy (clients may ship it in their preload lists)",
        reloadable=False,
    )
    tls_handshake_timeout: float = setting(
        10.0,
        "seconds a TLS handshake may take before the connection is closed",
        reloadable=False,
        metavar="SECONDS",
    )
    web_port: int = setting(
        0,
        "TCP port of the web listener: the web client's files over HTTP and IRC over "
        "WebSocket (ws://); 0 for none, -1 picks a free one (a line before the ready line "
        "tells which)",
        reloadable=False,
    )
    web_tls_port: int = setting(
        0,
        "TCP port of the web listener over TLS (https:// and wss://, with the certificate of "
        "--tls-cert); 0 for none, -1 picks a free one",
        reloadable=False,
    )
    web_host: str = setting(
        "",
        "address of the web listeners; '' for --host",
        reloadable=False,
        metavar="ADDRESS",
    )
    web_root: str | None = setting(
        None,
        "folder of the files the web port serves; none: the web client that comes with "
        "fastchat (the package folder fastchat/webclient)",
        reloadable=False,
        type=str,
        convert=_maybe_path,
        metavar="DIR",
        path=True,
        example="",
    )
    web_origins: tuple[str, ...] = setting(
        (),
        "comma-separated Origin values a browser's WebSocket may come from (such as "
        "https://chat.example.org), besides the web port's own address; * for any. A request "
        "without Origin (not a browser) is always let in; a refused one gets HTTP 403",
        reloadable=False,
        type=str,
        convert=_origin_list,
        metavar="LIST",
    )
    web_handshake_timeout: float = setting(
        10.0,
        "seconds a web connection may take to send its HTTP request (and the TLS handshake "
        "before it) before it is closed",
        reloadable=False,
        metavar="SECONDS",
    )
    # names
    server_name: bytes = setting(
        b"fastchat.local",
        "the server's name, the source of its replies",
        reloadable=False,
        type=str,
        convert=str.encode,
        metavar="NAME",
    )
    network: bytes = setting(
        b"fastchat",
        "the network's name, `NETWORK` in ISUPPORT",
        reloadable=False,
        type=str,
        convert=str.encode,
        metavar="NAME",
    )
    # what a client gets
    autojoin: tuple[bytes, ...] = setting(
        (b"#lobby",),
        "comma-separated channels every client joins on registration; '' for none",
        reloadable=True,
        type=str,
        convert=_channel_list,
        metavar="LIST",
    )
    lobby_delay_join_at: int = setting(
        200,
        "an autojoin channel that grows past this many members gets `+D` (delayed join: a "
        "member's `JOIN` is shown when it first speaks), set by the server; 0 for never",
        reloadable=True,
    )
    password: bytes | None = setting(
        None,
        "connection password clients must send with `PASS`; a wrong one gets `464` and a "
        "disconnect",
        reloadable=True,
        type=str,
        convert=_maybe_password,
        metavar="PASSWORD",
    )
    motd: tuple[bytes, ...] = setting(
        _BUILTIN_MOTD,
        "file whose lines make the message of the day",
        reloadable=True,
        key="motd_file",
        type=str,
        convert=_read_motd,
        metavar="FILE",
        shown_default="built-in line",
        path=True,
        example="motd.txt",
    )
    kline_file: str | None = setting(
        None,
        "file that keeps the K-lines (`KLINE`) across restarts, rewritten after each change; "
        "'' for none: K-lines then last until the server stops",
        reloadable=False,
        type=str,
        convert=_maybe_path,
        metavar="FILE",
        shown_default=f"{DEFAULT_KLINE_FILE} next to the config file; none without --config",
        path=True,
        example=DEFAULT_KLINE_FILE,
    )
    data_dir: str = setting(
        "./fastchat-data",
        "directory of the server's store, `fastchat.db` (accounts, message history; SQLite), "
        "created if missing",
        reloadable=False,
        metavar="DIR",
        path=True,
        example="fastchat-data",
    )
    history: bool = setting(
        True,
        "keep channel messages (PRIVMSG, NOTICE) in the store, for IRCv3 `CHATHISTORY` "
        "(draft/chathistory)",
        reloadable=False,
        inverted=True,
    )
    history_days: int = setting(
        0,
        "delete messages older than this many days from the history (checked hourly); 0 keeps them",
        reloadable=False,
        metavar="DAYS",
    )
    history_limit: int = setting(
        0,
        "keep at most this many messages per channel or conversation (checked hourly); "
        "0 for no limit",
        reloadable=False,
        metavar="MESSAGES",
    )
    history_replay: int = setting(
        10,
        "replay a channel's last lines to a client that joins it (after its JOIN, topic and "
        "NAMES; in a `chathistory` batch, else after a NOTICE saying so), unless it negotiated "
        "draft/chathistory; 0 for none",
        reloadable=True,
        convert=_at_least_zero,
        metavar="LINES",
    )
    history_replay_minutes: int = setting(
        0,
        "replay on JOIN only lines younger than this many minutes; 0 for no limit",
        reloadable=True,
        convert=_at_least_zero,
        metavar="MINUTES",
    )
    chathistory_max: int = setting(
        100,
        "the most messages one `CHATHISTORY` request gives back, `CHATHISTORY` in ISUPPORT",
        reloadable=True,
    )
    # limits, announced in ISUPPORT where IRC has a token
    nicklen: int = setting(
        30, "max nick length, `NICKLEN`; longer nicks get `432`", reloadable=True
    )
    channellen: int = setting(
        50, "max channel name length, `CHANNELLEN`; longer names get `403`", reloadable=True
    )
    topiclen: int = setting(
        390, "max topic length, `TOPICLEN`; longer topics are cut", reloadable=True
    )
    kicklen: int = setting(
        255, "max kick reason length, `KICKLEN`; longer reasons are cut", reloadable=True
    )
    awaylen: int = setting(
        200, "max away message length, `AWAYLEN`; longer ones are cut", reloadable=True
    )
    register_before_connect: bool = setting(
        False,
        "let a connection `REGISTER` an account before it has registered itself (IRCv3 "
        "draft/account-registration `before-connect`); it is logged in to it on registering",
        reloadable=True,
    )
    register_requires_email: bool = setting(
        False,
        "`REGISTER` needs an email address (`email-required`; it is kept with the account, "
        "and mailed nothing unless `register_verify`)",
        reloadable=True,
    )
    register_verify: bool = setting(
        False,
        "email verification: `REGISTER` needs an address (`email-required`) and answers "
        "`VERIFICATION_REQUIRED`; the account is unusable, its name taken, until `VERIFY "
        "<account> <code>` with the code mailed there (through `smtp_server`; without one the "
        "code is logged at WARNING for the operator to pass on); unverified, it is dropped "
        "after 24 hours",
        reloadable=True,
    )
    smtp_server: tuple[str, int] | None = setting(
        None,
        "`HOST:PORT` (`HOST` alone: port 25) of the SMTP server that sends the verification "
        "mails of `register_verify`: plain SMTP, no TLS and no login, as a relay on the same "
        "host or network accepts; '' for none",
        reloadable=True,
        type=str,
        convert=_maybe_smtp_server,
        metavar="HOST:PORT",
        shown_default="none",
    )
    mail_from: str = setting(
        "",
        "the `From` address of the verification mails; '' for `fastchat@` and the server's name",
        reloadable=True,
        convert=_maybe_address,
        metavar="ADDRESS",
        shown_default="`fastchat@` and the server's name",
    )
    password_min_length: int = setting(
        6,
        "the shortest account password `REGISTER` accepts (shorter: `FAIL REGISTER WEAK_PASSWORD`)",
        reloadable=True,
        metavar="BYTES",
    )
    nick_protection: str = setting(
        "warn",
        "what happens to a user who takes a registered account's nick without being logged "
        "in to it: `off`, `warn` (a NOTICE from NickServ asks it to IDENTIFY) or `rename` "
        "(warned, then renamed to `Guest` and five digits after the grace period)",
        reloadable=True,
        convert=_nick_protection,
        metavar="MODE",
    )
    nick_protection_grace: int = setting(
        30,
        "seconds a user warned by nick protection has to IDENTIFY before `rename` renames it",
        reloadable=True,
        metavar="SECONDS",
    )
    client_tag_deny: tuple[bytes, ...] = setting(
        (),
        "comma-separated client-only message tags (without `+`) the server does not relay, "
        "`CLIENTTAGDENY`; `*` for all; '' relays every one",
        reloadable=True,
        type=str,
        convert=_channel_list,
        metavar="LIST",
        shown_default="none",
    )
    utf8_only: bool = setting(
        True,
        "accept only UTF-8 from clients, `UTF8ONLY`: any other line is refused with "
        "`FAIL <command> INVALID_UTF8`, so nobody is sent text in an encoding they cannot read",
        reloadable=False,
        inverted=True,
    )
    whowas_size: int = setting(
        1000,
        "`WHOWAS` entries the server keeps, for every nick in all; a nick change, a quit or a "
        "kill adds one, and the oldest goes first; 0 keeps none",
        reloadable=True,
        metavar="ENTRIES",
    )
    server_info: bytes = setting(
        b"fastchat IRC server",
        "the server's description, in `LINKS` and `INFO`",
        reloadable=True,
        type=str,
        convert=str.encode,
        metavar="TEXT",
    )
    admin_location: bytes = setting(
        b"",
        "where the server is (city, country), `ADMIN`'s `257`",
        shown_default="none",
        reloadable=True,
        type=str,
        convert=str.encode,
        metavar="TEXT",
    )
    admin_name: bytes = setting(
        b"",
        "who runs the server (a person, an institution), `ADMIN`'s `258`",
        shown_default="none",
        reloadable=True,
        type=str,
        convert=str.encode,
        metavar="TEXT",
    )
    admin_email: bytes = setting(
        b"",
        "how to reach the server's administrators, `ADMIN`'s `259`",
        shown_default="none",
        reloadable=True,
        type=str,
        convert=str.encode,
        metavar="ADDRESS",
    )
    max_channels: int = setting(
        50, "channels per user, `CHANLIMIT=#&:N`; one more join gets `405`", reloadable=True
    )
    max_targets: int = setting(
        4,
        "targets per `PRIVMSG`/`NOTICE`, `MAXTARGETS`/`TARGMAX`; more get `407`",
        reloadable=True,
    )
    max_monitor: int = setting(
        100,
        "nicks on one client's `MONITOR` list, `MONITOR=N`, 0 for no limit (a bare `MONITOR`); "
        "more get `734`",
        reloadable=True,
    )
    max_clients: int = setting(
        AUTO,
        "connections for the whole server, 0 for no limit; over it, `ERROR :... [Server is "
        "full]`. auto: what the workers' descriptors allow (each worker's limit, less what it "
        "needs itself, times the workers); the log says what it picked",
        reloadable=True,
        auto=True,
        shown_default="auto",
        example="auto",
    )
    max_clients_per_ip: int = setting(
        0,
        "connections from one address, 0 for no limit; over it, "
        "`ERROR :... [Too many connections from your IP]`",
        reloadable=True,
    )
    # protection
    sendq: int = setting(
        1 << 20,
        "bytes of output a client has not read, beyond what its socket holds; over it, "
        "`ERROR :SendQ exceeded` and its channels see it quit (not announced in ISUPPORT)",
        reloadable=True,
        metavar="BYTES",
    )
    recvq: int = setting(
        8192,
        "bytes of input a client sent that flood control has not let through yet; over it, "
        "`ERROR :Excess Flood`",
        reloadable=True,
        metavar="BYTES",
    )
    max_line: int = setting(
        512,
        "the longest line a client may send, in bytes with its CR LF and without its IRCv3 "
        "tags (RFC 1459: 512); a longer one gets `417`. Raise it for long passwords in "
        "`REGISTER`; what the server sends stays within 512 bytes (a longer message is cut)",
        reloadable=False,
        convert=_line_length,
        metavar="BYTES",
    )
    flood_control: bool = setting(
        True,
        "flood control, which delays lines beyond the burst and the rate; turn it off for "
        "benchmarks and trusted bots",
        reloadable=True,
        inverted=True,
    )
    flood_burst: int = setting(
        10, "lines a client may send at once", reloadable=True, metavar="LINES"
    )
    flood_rate: float = setting(
        5.0,
        "sustained lines per second; excess lines are delayed, not dropped",
        reloadable=True,
        metavar="LINES/S",
    )
    registration_timeout: float = setting(
        60.0,
        "seconds to finish registration, else `ERROR :... [Registration timeout]`",
        reloadable=True,
        metavar="SECONDS",
    )
    ping_interval: float = setting(
        120.0,
        "idle seconds before the server sends `PING`",
        reloadable=True,
        metavar="SECONDS",
    )
    ping_timeout: float = setting(
        60.0,
        "seconds to answer that `PING`, else `ERROR :... [Ping timeout: N seconds]`",
        reloadable=True,
        metavar="SECONDS",
    )
    shutdown_grace: float = setting(
        3.0,
        "seconds a worker flushes its clients' output on `SIGTERM` before closing",
        reloadable=True,
        metavar="SECONDS",
    )
    log_level: str = setting(
        "INFO",
        "DEBUG, INFO, WARNING or ERROR",
        reloadable=True,
        convert=str.upper,
        metavar="LEVEL",
    )
    test_hooks: bool = setting(
        False,
        "enable fault-injection commands; only for the test suite",
        reloadable=False,
        hidden=True,
    )
    # tables of the config file (no flag): see fastchat.example.toml
    opers: tuple[OperBlock, ...] = ()


def _rows() -> tuple[Setting, ...]:
    """The Setting of every Config field, with the name, key and type the field gives."""
    hints = typing.get_type_hints(Config)
    rows = []
    for f in dataclasses.fields(Config):
        if _SETTING not in f.metadata:
            continue  # a list of tables, set only from the config file
        row, given_type = f.metadata[_SETTING]
        kind = given_type or hints[f.name]
        if kind not in _PLAIN_TYPES:
            raise TypeError(f"Config.{f.name}: a {kind} field needs setting(type=..., convert=...)")
        rows.append(dataclasses.replace(row, name=f.name, key=row.key or f.name, type=kind))
    return tuple(rows)


SETTINGS: tuple[Setting, ...] = _rows()
"""Every setting, in the order of :class:`Config`'s fields."""

_BY_KEY = {s.key: s for s in SETTINGS}


def from_mapping(values: Mapping[str, object], base: Config | None = None) -> Config:
    """``base`` (by default, the defaults) with the settings named in ``values`` changed.

    ``values`` maps file keys (:attr:`Setting.key`) to raw values, as a config file gives
    them. Raises :class:`ConfigError`, naming the key, for an unknown key or a wrong value."""
    changes: dict[str, Any] = {}  # each checked by its row
    for key, raw in values.items():
        row = _BY_KEY.get(key)
        if row is None:
            raise ConfigError(f"unknown setting {key!r}")
        changes[row.name] = row.value(raw)
    return dataclasses.replace(Config() if base is None else base, **changes)


def with_auto(config: Config, picks: Mapping[str, int]) -> Config:
    """``config`` with each setting given as ``auto`` replaced by what the server picked for
    it at start (``picks``, by field name; fastchat.server.runtime.limits decides): what the
    processes run with, at start and after each reload of the config file."""
    changes: dict[str, Any] = {
        name: picked for name, picked in picks.items() if getattr(config, name) == AUTO
    }
    return dataclasses.replace(config, **changes) if changes else config


def reloaded(old: Config, new: Config) -> tuple[Config, list[str]]:
    """What a reload makes of the running ``old`` config, given the file's ``new`` one: every
    reloadable setting (and the opers) from ``new``; the others stay as they are, and their
    keys come back in the list when the file changed them (they need a restart)."""
    changes: dict[str, Any] = {"opers": new.opers}
    restart: list[str] = []
    for row in SETTINGS:
        value = getattr(new, row.name)
        if row.reloadable:
            changes[row.name] = value
        elif value != getattr(old, row.name):
            restart.append(row.key)
    return dataclasses.replace(old, **changes), restart


def _shown(row: Setting) -> str:
    """The default as a user would write it: ``fastchat.local``, ``#lobby``, ``true``."""
    if row.shown_default:
        return row.shown_default
    value = row.default
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, tuple):
        return ",".join(v.decode() for v in value) or "''"
    return str(value)


def add_arguments(
    parser: argparse.ArgumentParser, auto_here: Mapping[str, str] | None = None
) -> None:
    """One flag per setting. A flag not given leaves its key out of the namespace's values
    (``None``), so that :func:`from_args` changes only what the command line names.
    ``auto_here``: what ``auto`` would pick on this machine, by key, for the help to say."""
    for row in SETTINGS:
        text = argparse.SUPPRESS if row.hidden else row.help.replace("`", "").replace("%", "%%")
        if row.type is bool:
            action = "store_false" if row.inverted else "store_true"
            parser.add_argument(row.flag, dest=row.key, action=action, default=None, help=text)
            continue
        if not row.hidden:
            here = (auto_here or {}).get(row.key)
            text += f" (default {_shown(row)}" + (f"; here: {here})" if here else ")")
        parser.add_argument(
            row.flag,
            dest=row.key,
            type=_int_or_auto if row.auto else row.type,
            default=None,
            metavar=row.metavar or ("N|auto" if row.auto else "N"),
            help=text,
        )


def _int_or_auto(text: str) -> int | str:
    """A flag's argument for a setting that takes ``auto``: the word, or an int."""
    return text if text == "auto" else int(text)


def given_args(args: argparse.Namespace) -> dict[str, object]:
    """The settings the command line names, by file key, as raw values (the flags not given
    are left out): what overrides a config file."""
    given = {s.key: getattr(args, s.key) for s in SETTINGS}
    return {key: raw for key, raw in given.items() if raw is not None}


def from_args(args: argparse.Namespace) -> Config:
    """The Config the command line asks for: the defaults, changed by the flags given."""
    return from_mapping(given_args(args))


def markdown_table() -> str:
    """Every setting but the hidden ones, as a Markdown table (README.md's settings section)."""
    lines = [
        "| flag | file key | type | default | reloadable | what it does |",
        "|---|---|---|---|---|---|",
    ]
    for row in SETTINGS:
        if row.hidden:
            continue
        flag = row.flag if row.type is bool else f"{row.flag} {row.metavar or 'N'}"
        flag += "\\|auto" if row.auto else ""
        default = _shown(row)
        if not row.shown_default and row.default is not None:
            default = f"`{default}`"
        cells = [
            f"`{flag}`",
            f"`{row.key}`",
            row.type.__name__ + (" or `auto`" if row.auto else ""),
            default,
            "yes" if row.reloadable else "no",
            row.help.replace("|", "\\|"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


README_BEGIN = "<!-- settings:begin -->"
README_END = "<!-- settings:end -->"


def with_settings_table(readme: str) -> str:
    """``readme`` with the current :func:`markdown_table` between its settings markers."""
    head, begin, rest = readme.partition(README_BEGIN)
    _, end, tail = rest.partition(README_END)
    if not begin or not end:
        raise ValueError(f"no {README_BEGIN} ... {README_END} section")
    return f"{head}{README_BEGIN}\n{markdown_table()}{README_END}{tail}"


#: The operator block of fastchat.example.toml: the hash of this password, with this salt so
#: that the file is the same every time it is generated (a real hash has a random salt).
EXAMPLE_OPER_PASSWORD = b"example-password"
_EXAMPLE_OPER_SALT = b"fastchat-example"

_EXAMPLE_HEAD = """\
# fastchat.example.toml: every setting of `fastchat serve`, commented out, with its default.
#
#     fastchat serve --config fastchat.toml
#
# Each key is a flag of `fastchat serve` without `--`, with `_` for `-`; `--no-flood-control`
# is `flood_control = false`. Flags given on the command line override this file. A file name
# that is not absolute is relative to this file's folder. An unknown key or a value of the
# wrong type is an error that names this file, the line and the key: the server does not start.
#
# Generated from fastchat/server/config.py by `make settings-doc`: edit a copy, not this file.
"""

_EXAMPLE_OPERS = """\
# Operators: one [[oper]] table each, for `OPER <name> <password>`.
#   name        the name given to OPER
#   password    a hash, as `fastchat mkpasswd` prints it, never the password itself. This one
#               is the hash of "{password}": make your own.
#   hosts       optional: the user@host masks an OPER must come from (default ["*@*"])
#   privileges  what the operator may do, any of: {privileges}
"""


def _toml(value: object) -> str:
    """``value`` written in TOML (a JSON string is a TOML basic string)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def _raw_default(row: Setting) -> object:
    """The default as a config file writes it: the raw value whose conversion is the default
    (``autojoin = "#lobby"``, ``password = ""`` for none), or the row's example."""
    if row.example is not None:
        return row.example
    value = row.default
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, tuple):
        return ",".join(v.decode() for v in value)
    return value


def _comment(text: str) -> list[str]:
    return textwrap.wrap(text, width=98, initial_indent="# ", subsequent_indent="# ")


def example_file() -> str:
    """fastchat.example.toml: every setting but the hidden ones, commented out, each with its
    help and its default; then one commented-out ``[[oper]]``."""
    out = [_EXAMPLE_HEAD]
    for row in SETTINGS:
        if row.hidden:
            continue
        text = row.help.replace("`", "")
        if row.example is not None:
            text += f" (default: {_shown(row)})"
        out += [*_comment(text), f"# {row.key} = {_toml(_raw_default(row))}", ""]
    oper_hash = passwords.hash_password(EXAMPLE_OPER_PASSWORD, salt=_EXAMPLE_OPER_SALT)
    out.append(
        _EXAMPLE_OPERS.format(
            password=EXAMPLE_OPER_PASSWORD.decode(), privileges=", ".join(sorted(PRIVILEGES))
        )
    )
    out += [
        "# [[oper]]",
        '# name = "admin"',
        f"# password = {_toml(oper_hash)}",
        f"# hosts = {_toml(['*@127.0.0.1', '*@::1'])}",
        f"# privileges = {_toml(sorted(PRIVILEGES))}",
    ]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m fastchat.server.config``: the settings as documentation."""
    parser = argparse.ArgumentParser(
        prog="python -m fastchat.server.config",
        description="Print or update the documents made from the settings of fastchat serve: "
        "README.md's table and fastchat.example.toml.",
    )
    parser.add_argument("--markdown", action="store_true", help="print the Markdown table")
    parser.add_argument("--example", action="store_true", help="print the example config file")
    parser.add_argument(
        "--update-readme", metavar="FILE", help="rewrite the table between FILE's markers"
    )
    parser.add_argument(
        "--update-example", metavar="FILE", help="write the example config file to FILE"
    )
    args = parser.parse_args(argv)
    if not (args.markdown or args.example or args.update_readme or args.update_example):
        parser.error(
            "nothing to do: give --markdown, --example, --update-readme or --update-example"
        )
    if args.markdown:
        sys.stdout.write(markdown_table())
    if args.example:
        sys.stdout.write(example_file())
    if args.update_readme:
        with open(args.update_readme, encoding="utf-8") as f:
            text = f.read()
        _write_if_changed(args.update_readme, text, with_settings_table(text))
    if args.update_example:
        try:
            with open(args.update_example, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            text = ""
        _write_if_changed(args.update_example, text, example_file())
    return 0


def _write_if_changed(path: str, old: str, new: str) -> None:
    if new != old:
        with open(path, "w", encoding="utf-8") as f:
            f.write(new)


if __name__ == "__main__":
    sys.exit(main())
