"""The K-line file (``kline_file``): the server's bans, kept across restarts.

Owns: the file's format, TOML with one ``[[kline]]`` table per K-line (``mask``, ``reason``,
``setter``, ``set_ms``, ``expires_ms``: Unix milliseconds, 0 for never); reading it, every
error naming the file and the line as the config file's do; and rewriting it atomically (a
temporary file in the same folder, written and synced, then renamed over it) on a thread of
its own, off the loop, after the K-lines change.
Must never: decide anything about K-lines (the sequencer does, and ``State.klines`` is the
truth while the server runs), nor write from the loop's thread (a write waits on the disk,
and the loop routes everybody's messages).

Only the process that runs the sequencer keeps the file: the hub at several workers, the
one worker at ``--workers 1``. It loads the file when it starts, before it decides anything
(:meth:`KLineFile.load`), and saves after every turn of its loop that changed the K-lines
(:meth:`KLineFile.maybe_save`: one comparison when nothing changed). ``fastchat serve``
reads it once before anything starts (:func:`check`), so a malformed file is one line on
stderr and exit status 2, never a half-started server.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import tomllib
from collections.abc import Mapping

from fastchat.irc.casemap import fold
from fastchat.irc.message import truncate_utf8
from fastchat.server.commands.operators import KLINE_REASON_LEN
from fastchat.server.configfile import ConfigFileError, KeyLines, syntax_error
from fastchat.server.network.records import EKline, make
from fastchat.server.network.sequencer import kline_mask_problem
from fastchat.server.network.state import KLine, State
from fastchat.server.render import dates

log = logging.getLogger("fastchat.klines")

_KEYS = ("mask", "reason", "setter", "set_ms", "expires_ms")
_DEFAULT_REASON = b"No reason given"
#: How long :meth:`KLineFile.close` waits for a write under way when the process stops.
CLOSE_WAIT = 2.0

_HEAD = """\
# fastchat K-lines (server bans), one [[kline]] table each: kept by the server, which rewrites
# this file after every KLINE and UNKLINE. Edit it only while the server is stopped.
#   mask        user@host, with * and ?         setter      who set it (a nick)
#   reason      why (default "No reason given")  set_ms      when, Unix milliseconds
#   expires_ms  until when, Unix milliseconds; 0 (the default) for good
"""


def parse(path: str, text: str, now: int) -> list[KLine]:
    """The K-lines of a K-line file's ``text`` (only ``mask`` is required: ``setter``
    defaults to ``*``, ``set_ms`` to ``now``, ``expires_ms`` to 0, a reason longer than a
    KLINE's is cut). Raises :class:`ConfigFileError` naming ``path``, the line and the key."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise syntax_error(path, text, e) from e
    lines = KeyLines.scan(text)
    for key in document:
        if key != "kline":
            raise ConfigFileError(
                path, lines.top.get(key), f"unknown key {key!r} (a K-line is a [[kline]])", key=key
            )
    tables = document.get("kline", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigFileError(
            path, lines.top.get("kline"), "'kline' must be [[kline]] tables", key="kline"
        )
    where = lines.tables.get("kline", [])
    found: dict[bytes, int] = {}
    out: list[KLine] = []
    for i, table in enumerate(tables):
        header, key_lines = where[i] if i < len(where) else (None, {})
        line = _Table(path, header, key_lines, i + 1).kline(table, now)
        if fold(line.mask) in found:
            first = found[fold(line.mask)]
            raise ConfigFileError(
                path,
                key_lines.get("mask", header),
                f"kline #{i + 1}: a second K-line on {line.mask.decode()!r} (the first is"
                f" kline #{first})",
                key="mask",
            )
        found[fold(line.mask)] = i + 1
        out.append(line)
    return out


class _Table:
    """Checks one ``[[kline]]`` table; its errors say which one, on which line."""

    def __init__(self, path: str, header: int | None, key_lines: dict[str, int], n: int) -> None:
        self.path = path
        self.header = header
        self.key_lines = key_lines
        self.label = f"kline #{n}"

    def fail(self, key: str, message: str) -> ConfigFileError:
        line = self.key_lines.get(key, self.header)
        return ConfigFileError(self.path, line, f"{self.label}, key {key!r}: {message}", key=key)

    def kline(self, table: Mapping[str, object], now: int) -> KLine:
        for key in table:
            if key not in _KEYS:
                raise self.fail(key, f"unknown key (a [[kline]] has {', '.join(_KEYS)})")
        if "mask" not in table:
            raise ConfigFileError(self.path, self.header, f"{self.label}: missing key 'mask'")
        mask = self.text("mask", table["mask"])
        problem = kline_mask_problem(mask)
        if problem is not None:
            raise self.fail("mask", f"{mask.decode(errors='replace')!r} {problem.decode()}")
        reason = self.text("reason", table.get("reason", "")) or _DEFAULT_REASON
        setter = self.text("setter", table.get("setter", "*"))
        if not setter or b" " in setter:
            raise self.fail("setter", "must be one word (a nick)")
        set_ms = self.number("set_ms", table.get("set_ms", now))
        expires_ms = self.number("expires_ms", table.get("expires_ms", 0))
        return KLine(mask, setter, truncate_utf8(reason, KLINE_REASON_LEN), set_ms, expires_ms)

    def text(self, key: str, value: object) -> bytes:
        if not isinstance(value, str):
            raise self.fail(key, f"expected a string, got {type(value).__name__}")
        if any(c in value for c in "\r\n\0"):
            raise self.fail(key, "holds a line break or a NUL, which no IRC line can carry")
        return value.encode()

    def number(self, key: str, value: object) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise self.fail(key, f"expected Unix milliseconds (an integer >= 0), got {value!r}")
        return value


def render(klines: list[KLine]) -> str:
    """The text of a K-line file holding ``klines``, each with its dates in a comment."""
    out = [_HEAD.rstrip("\n")]
    for k in klines:
        expires = dates.created(k.expires / 1000).decode() if k.expires else "never"
        out += [
            "",
            "[[kline]]",
            f"mask = {_string(k.mask)}",
            f"reason = {_string(k.reason)}",
            f"setter = {_string(k.setter)}",
            f"set_ms = {k.set_at}  # {dates.created(k.set_at / 1000).decode()}",
            f"expires_ms = {k.expires}  # {expires}",
        ]
    return "\n".join(out) + "\n"


def _string(value: bytes) -> str:
    """``value`` as a TOML basic string: every control character escaped (TOML allows none
    but tab raw, DEL included), bytes that are not UTF-8 replaced (a reason is kept as UTF-8
    when it is set; this is only a guard)."""
    out = ['"']
    for c in value.decode(errors="replace"):
        if c in '"\\':
            out.append("\\" + c)
        elif c < " " or c == "\x7f":
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def read(path: str, now: int) -> list[KLine]:
    """The K-lines of the file at ``path``; none when it does not exist yet (a server that
    never set one). Raises :class:`ConfigFileError` for a file that cannot be used."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    except OSError as e:
        raise ConfigFileError(path, None, f"cannot read: {e.strerror or e}") from e
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigFileError(path, data.count(b"\n", 0, e.start) + 1, "not UTF-8 text") from e
    return parse(path, text, now)


def check(path: str | None) -> None:
    """``fastchat serve``, before anything starts: raises :class:`ConfigFileError` if the
    K-line file at ``path`` (if any) cannot be used."""
    if path is not None:
        read(path, int(time.time() * 1000))


def write_atomically(path: str, text: str) -> None:
    """Replace the file at ``path`` with ``text``: a reader (or a crash) sees the old file
    or the new one, never half of one. The temporary file is made in the same folder, so the
    rename stays within one file system, and synced before it; then the folder is synced,
    so the rename lasts too."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):
        folder = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


class KLineFile:
    """The K-line file of the process that runs the sequencer (``path`` None: no file, and
    every call does nothing)."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._saved = -1  # the State.klines_changed last handed to the writer
        self._pending: str | None = None  # the text the writer is to write next
        self._closing = False
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def load(self, state: State, now: int) -> None:
        """Before the sequencer decides anything: put the file's K-lines in force in
        ``state`` (restored E_KLINEs: they remove nobody; expired ones are dropped). A file
        that cannot be used here (``fastchat serve`` checked it at start, so it changed
        since) is logged, and the process goes on without its K-lines; the file is
        rewritten at the next change."""
        if self.path is None:
            return
        try:
            klines = read(self.path, now)
        except ConfigFileError as e:
            log.error("K-line file unusable, going on without its K-lines: %s", e)
            return
        for k in klines:
            state.apply(make(EKline, 0, *k, (), now))
        self._saved = state.klines_changed
        log.info("%d K-line(s) in force from %s", len(state.active_klines(now)), self.path)

    def maybe_save(self, state: State, now: int | None = None) -> None:
        """On the loop, after each turn: if the K-lines changed since the last save, hand
        the new text to the writer thread (which writes only the latest, however many
        changes came meanwhile). ``now`` (ms) is read from the clock only then, unless given:
        a turn that changed nothing costs one comparison."""
        if self.path is None or state.klines_changed == self._saved:
            return
        if now is None:
            now = int(time.time() * 1000)
        self._saved = state.klines_changed
        text = render(state.active_klines(now))
        with self._cond:
            self._pending = text
            self._cond.notify()
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._write_loop, name="fastchat-klinefile", daemon=True
            )
            self._thread.start()

    def _write_loop(self) -> None:
        assert self.path is not None
        while True:
            with self._cond:
                while self._pending is None and not self._closing:
                    self._cond.wait()
                text, self._pending = self._pending, None
                if text is None:
                    return  # closing, and nothing left to write
            try:
                write_atomically(self.path, text)
            except OSError as e:
                log.error(
                    "cannot write the K-line file %s (%s): K-lines in force now will not"
                    " survive a restart",
                    self.path,
                    e.strerror or e,
                )

    def close(self) -> None:
        """The process is stopping: let the writer finish what it was given (for at most
        CLOSE_WAIT seconds), then stop it."""
        thread = self._thread
        if thread is None:
            return
        with self._cond:
            self._closing = True
            self._cond.notify()
        thread.join(CLOSE_WAIT)
        if thread.is_alive():
            log.error("the K-line file %s was still being written at exit", self.path)
