"""The config file of ``fastchat serve --config FILE``: TOML, read into a :class:`Config`.

Every setting's file key (:attr:`config.Setting.key`) sits at the top level of the file
(``motd_file = "motd.txt"``, ``workers = 4``, ``flood_control = false``); tables only for lists
of records: ``[[oper]]`` (``name``, ``password``: a hash from ``fastchat mkpasswd``, optional
``hosts``, ``privileges``). The settings are ``config.py``'s rows, checked by them; this module
adds the file: the TOML syntax, the line each error is on, the ``[[oper]]`` tables, file
names relative to the file's folder, and the K-line file's place by default (``klines.toml``
next to this file). Precedence: the defaults, then the file, then the flags
given on the command line (:func:`load`).

Every error is a :class:`ConfigFileError` naming the file, the line and the key:
``fastchat.toml:7: setting 'nicklen': expected int, got str '30'``.

Owns: reading and checking a config file. :func:`load` can be called again at any time with
the same arguments (a reload reads the file anew).
Must never: start, signal or reconfigure anything (the caller decides what a new Config means),
nor let a half-checked file through: a file either gives a whole Config or raises.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NoReturn

from fastchat.server import config, passwords
from fastchat.server.config import Config, ConfigError, OperBlock

_ROWS = {row.key: row for row in config.SETTINGS}
_OPER_KEYS = ("name", "password", "hosts", "privileges")
_OPER_REQUIRED = ("name", "password")


class ConfigFileError(ConfigError):
    """A config file cannot be used. ``str()`` is one line: ``FILE:LINE: what is wrong``
    (``FILE:LINE:COLUMN:`` for a TOML syntax error, ``FILE:`` when there is no line)."""

    def __init__(
        self, path: str, line: int | None, message: str, *, key: str = "", column: int = 0
    ) -> None:
        self.path = path
        self.line = line
        self.column = column
        self.key = key
        where = path if line is None else f"{path}:{line}" + (f":{column}" if column else "")
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True, slots=True)
class ConfigFile:
    """A config file, read and checked: ``config`` is the defaults changed by the file."""

    path: str
    settings: Mapping[str, object]  # the file's settings by key, raw, file names made absolute
    opers: tuple[OperBlock, ...]
    config: Config = field(repr=False)


@dataclass(frozen=True, slots=True)
class Source:
    """Where the running server's config comes from: a file, and the flags given over it.
    :meth:`load` reads the file anew (a reload: SIGHUP, or REHASH from an operator).
    ``auto``: what the server picked at start for the settings given as ``auto``, which a
    reload keeps (:func:`config.with_auto`)."""

    path: str
    overrides: Mapping[str, object]
    auto: Mapping[str, int] = field(default_factory=dict)

    def load(self) -> Config:
        return config.with_auto(load(self.path, self.overrides), self.auto)


def load(path: str | os.PathLike[str] | None, overrides: Mapping[str, object]) -> Config:
    """The Config of ``fastchat serve``: the defaults, changed by the file at ``path`` (if
    any), changed by ``overrides`` (the flags given on the command line, by key, as
    :func:`config.given_args` returns them). Reads the file anew at every call.

    Raises :class:`ConfigFileError` for a file that cannot be used, and :class:`ConfigError`
    (naming the key) for an override that cannot."""
    base = read(path).config if path is not None else None
    return config.from_mapping(overrides, base)


def read(path: str | os.PathLike[str]) -> ConfigFile:
    """Read and check the config file at ``path``; raises :class:`ConfigFileError`."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ConfigFileError(name, None, f"cannot read: {e.strerror or e}") from e
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ConfigFileError(name, line, "not UTF-8 text") from e
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise syntax_error(name, text, e) from e
    return _check(name, document, KeyLines.scan(text))


def syntax_error(name: str, text: str, error: tomllib.TOMLDecodeError) -> ConfigFileError:
    """tomllib says where in its message: "... (at line 3, column 7)" or "(at end of
    document)"; we say it as a compiler does, with the key written on that line, if any."""
    message = str(error)
    at = re.search(r" \(at line (\d+), column (\d+)\)$", message)
    lines = text.splitlines()
    key = ""
    if at:
        line, column = int(at[1]), int(at[2])
        message = message[: at.start()]
        written = lines[line - 1] if line <= len(lines) else ""
        if m := _KEY.match(written) or _HEADER.match(written):
            key = _unquote(m["key"])
            message += f" (key {key!r})"
    else:  # the parser noticed at the end: the last line is where, not which key
        line, column = max(1, len(lines)), 0
        message = message.removesuffix(" (at end of document)") + " (at the end of the file)"
    return ConfigFileError(name, line, f"invalid TOML: {message}", key=key, column=column)


def _check(name: str, document: Mapping[str, object], lines: KeyLines) -> ConfigFile:
    """Each key of the parsed file checked by its setting's row, in the file's order (so the
    first error reported is the first in the file), and the ``[[oper]]`` tables. A file that
    names no K-line file keeps its K-lines in ``klines.toml`` in its own folder."""
    folder = os.path.dirname(os.path.abspath(name))
    settings: dict[str, object] = {}
    cfg = Config()
    opers: tuple[OperBlock, ...] = ()
    for key, raw in document.items():
        line = lines.top.get(key)
        if key == "oper":
            opers = _opers(name, raw, line, lines.tables.get("oper", []))
            continue
        row = _ROWS.get(key)
        if row is None:
            close = difflib.get_close_matches(key, [*_ROWS, "oper"], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigFileError(name, line, f"unknown setting {key!r}{hint}", key=key)
        if row.path and isinstance(raw, str) and raw:
            raw = os.path.join(folder, raw)  # an absolute raw stays as it is
        try:
            cfg = config.from_mapping({key: raw}, cfg)
        except ConfigError as e:
            raise ConfigFileError(name, line, str(e), key=key) from e
        settings[key] = raw
    if "kline_file" not in document:
        cfg = dataclasses.replace(cfg, kline_file=os.path.join(folder, config.DEFAULT_KLINE_FILE))
    return ConfigFile(name, settings, opers, dataclasses.replace(cfg, opers=opers))


# -- [[oper]] ------------------------------------------------------------------------------------


def _opers(
    name: str,
    raw: object,
    line: int | None,
    blocks: list[tuple[int, dict[str, int]]],
) -> tuple[OperBlock, ...]:
    """The ``[[oper]]`` tables, each checked: ``name`` and ``password`` required, ``hosts``
    and ``privileges`` optional, nothing else; no two with the same name."""
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        raise ConfigFileError(name, line, "'oper' must be [[oper]] tables", key="oper")
    opers: list[OperBlock] = []
    first_line: dict[bytes, int | None] = {}
    for i, table in enumerate(raw):
        header, key_lines = blocks[i] if i < len(blocks) else (line, {})
        oper = _Oper(name, header, key_lines, f"oper #{i + 1}")
        block = oper.block(table)
        if block.name in first_line:
            where = first_line[block.name]
            oper.fail("name", f"a second [[oper]] with this name (the first is at line {where})")
        first_line[block.name] = oper.line("name")
        opers.append(block)
    return tuple(opers)


@dataclass
class _Oper:
    """Checks one ``[[oper]]`` table; its errors say which one, on which line."""

    path: str
    header: int | None
    key_lines: dict[str, int]
    label: str

    def line(self, key: str) -> int | None:
        return self.key_lines.get(key, self.header)

    def fail(self, key: str, message: str) -> NoReturn:
        raise ConfigFileError(
            self.path, self.line(key), f"{self.label}, key {key!r}: {message}", key=key
        )

    def block(self, table: Mapping[str, object]) -> OperBlock:
        for key in _OPER_REQUIRED:
            if key not in table:
                raise ConfigFileError(
                    self.path, self.header, f"{self.label}: missing key {key!r}", key=key
                )
        name = self.text("name", table["name"])
        if not name or any(c.isspace() for c in name) or name.startswith(":"):
            self.fail("name", f"{name!r} is not a name OPER can give (no spaces, no ':' first)")
        self.label = f"oper {name!r}"
        for key in table:
            if key not in _OPER_KEYS:
                self.fail(key, f"unknown key (an [[oper]] has {', '.join(_OPER_KEYS)})")
        password = self.text("password", table["password"])
        if not passwords.is_hash(password):
            # never quote it: it may be a password written where its hash belongs
            self.fail("password", "not a password hash (make one with `fastchat mkpasswd`)")
        hosts = self.texts("hosts", table.get("hosts", ["*@*"]))
        if not hosts:
            self.fail("hosts", "an empty list lets nobody in; leave it out for any host")
        for mask in hosts:
            if mask.count("@") != 1 or any(c.isspace() for c in mask):
                self.fail("hosts", f"{mask!r} is not a user@host mask")
        privileges = self.texts("privileges", table.get("privileges", []))
        for privilege in privileges:
            if privilege not in config.PRIVILEGES:
                known = ", ".join(sorted(config.PRIVILEGES))
                self.fail("privileges", f"unknown privilege {privilege!r} (known: {known})")
        return OperBlock(
            name=name.encode(),
            password=password,
            hosts=tuple(mask.encode() for mask in hosts),
            privileges=frozenset(privileges),
        )

    def text(self, key: str, value: object) -> str:
        if not isinstance(value, str):
            self.fail(key, f"expected a string, got {type(value).__name__}")
        return value

    def texts(self, key: str, value: object) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(key, f"expected a list of strings, got {value!r}")
        return value


# -- where each key is written -------------------------------------------------------------------

# tomllib has parsed the file already and says nothing of where a key was; these find where it
# is written, to say which line is wrong. A key (bare or quoted; the first part of a dotted one)
# at the start of a line, and a table header ``[name]``, ``[[name]]`` or ``[name.sub]``.
_NAME = r"""(?P<key>[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_KEY = re.compile(rf"\s*{_NAME}\s*[.=]")
_HEADER = re.compile(rf"\s*\[(?P<array>\[)?\s*{_NAME}\s*(?P<dotted>\.)?")
_STRING_OR_COMMENT = re.compile(r"""\"(?:[^"\\]|\\.)*"|'[^']*'|#.*""")


def _unquote(key: str) -> str:
    if key[:1] in "\"'":
        return key[1:-1]  # escapes in a key's name are rare enough to leave alone
    return key


@dataclass
class KeyLines:
    """The line each top-level key (or table) is first written on; for each table of an
    array of tables (``[[oper]]``; ``[[kline]]`` in the K-line file), by name, the line of
    its header and of each of its keys."""

    top: dict[str, int] = field(default_factory=dict)
    tables: dict[str, list[tuple[int, dict[str, int]]]] = field(default_factory=dict)

    @classmethod
    def scan(cls, text: str) -> KeyLines:
        found = cls()
        keys: dict[str, int] | None = found.top  # where the keys of this section go
        open_quotes = ""  # inside a multi-line string: its delimiter
        depth = 0  # inside a multi-line array: how deep
        for number, line in enumerate(text.splitlines(), 1):
            if open_quotes:
                if line.count(open_quotes) % 2:
                    open_quotes = ""
                continue
            if depth == 0 and (header := _HEADER.match(line)):
                key = _unquote(header["key"])
                found.top.setdefault(key, number)
                keys = None  # a table of ours has no sub-tables: no keys to find there
                if header["array"] and not header["dotted"]:
                    tables = found.tables.setdefault(key, [])
                    tables.append((number, {}))
                    keys = tables[-1][1]
                continue
            if depth == 0 and keys is not None and (m := _KEY.match(line)):
                keys.setdefault(_unquote(m["key"]), number)
            for quotes in ('"""', "'''"):
                if line.count(quotes) % 2:
                    open_quotes = quotes
            if not open_quotes:
                bare = _STRING_OR_COMMENT.sub("", line)
                depth = max(0, depth + bare.count("[") - bare.count("]"))
        return found
