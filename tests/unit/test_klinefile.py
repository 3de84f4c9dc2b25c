"""The K-line file (``fastchat.server.runtime.klinefile``): its TOML format, every error naming
the file, the line and the key (as the config file's do), the atomic rewrite, and the keeper
that loads it into the sequencer's state at start and saves it off the loop after changes."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import pytest

from fastchat.irc.casemap import fold
from fastchat.server.configfile import ConfigFileError
from fastchat.server.network.records import EKline, EUnkline, make
from fastchat.server.network.state import KLine, State
from fastchat.server.runtime import klinefile
from fastchat.server.runtime.klinefile import KLineFile

NOW = 1_700_000_000_123
LINES = [
    KLine(b"~bob@10.0.0.*", b"ada", b"spamming", NOW - 5000, NOW + 3_600_000),
    KLine(b"*@192.0.2.1", b"ada", b'odd "quotes" \\ back\x02bold\x7f del, caf\xc3\xa9', NOW, 0),
]


def parse(text: str) -> list[KLine]:
    return klinefile.parse("klines.toml", text, NOW)


def error_of(text: str) -> ConfigFileError:
    with pytest.raises(ConfigFileError) as caught:
        parse(text)
    return caught.value


# -- the format ------------------------------------------------------------------------------------


def test_render_and_parse_round_trip() -> None:
    """What the server writes, it reads back the same, whatever bytes a reason holds (TOML
    takes no raw control character but tab: they are escaped), each K-line with its dates
    in a comment a person can read."""
    text = klinefile.render(LINES)
    assert parse(text) == LINES
    assert "set_ms = 1699999995123  # 2023-11-14 22:13:15 UTC" in text
    assert "expires_ms = 1700003600123  # 2023-11-14 23:13:20 UTC" in text
    assert "expires_ms = 0  # never" in text
    assert '"odd \\"quotes\\" \\\\ back\\u0002bold\\u007f del, café"' in text
    assert parse(klinefile.render([])) == []


def test_only_the_mask_is_required() -> None:
    """A K-line written by hand (while the server is stopped) needs only its mask: set now,
    by ``*``, for good, with the usual reason."""
    assert parse('[[kline]]\nmask = "~mal@*"\n') == [
        KLine(b"~mal@*", b"*", b"No reason given", NOW, 0)
    ]


def test_a_long_reason_is_cut_as_a_klines_is() -> None:
    (line,) = parse(f'[[kline]]\nmask = "~mal@*"\nreason = "{"é" * 200}"\n')
    assert len(line.reason) <= 246
    line.reason.decode()


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('mask = "x@y"\n', 1, "unknown key 'mask' (a K-line is a [[kline]])"),
        ("kline = 3\n", 1, "'kline' must be [[kline]] tables"),
        ('[[kline]]\nreason = "x"\n', 1, "kline #1: missing key 'mask'"),
        (
            '[[kline]]\nmask = "~a@*"\n\n[[kline]]\nmask = "*@*"\n',
            5,
            "kline #2, key 'mask': '*@*' would match everyone",
        ),
        (
            '[[kline]]\nmask = "~a@*"\nwho = "me"\n',
            3,
            "kline #1, key 'who': unknown key (a [[kline]] has mask, reason, setter, set_ms,"
            " expires_ms)",
        ),
        (
            '[[kline]]\nmask = "~a@*"\nexpires_ms = "soon"\n',
            3,
            "kline #1, key 'expires_ms': expected Unix milliseconds (an integer >= 0), got 'soon'",
        ),
        (
            '[[kline]]\nmask = "~a@*"\nset_ms = -1\n',
            3,
            "kline #1, key 'set_ms': expected Unix milliseconds (an integer >= 0), got -1",
        ),
        (
            '[[kline]]\nmask = "~a@*"\nreason = "two\\nlines"\n',
            3,
            "kline #1, key 'reason': holds a line break or a NUL, which no IRC line can carry",
        ),
        (
            '[[kline]]\nmask = "~a@*"\nsetter = "two words"\n',
            3,
            "kline #1, key 'setter': must be one word (a nick)",
        ),
        (
            '[[kline]]\nmask = "~A@*"\n\n[[kline]]\nmask = "~a@*"\n',
            5,
            "kline #2: a second K-line on '~a@*' (the first is kline #1)",
        ),
        ('[[kline]]\nmask = "~a@*\n', 2, "invalid TOML: Illegal character '\\n' (key 'mask')"),
    ],
)
def test_errors_name_the_file_and_the_line(text: str, line: int, message: str) -> None:
    """A K-line file that cannot be used is one error, ``FILE:LINE: what``, for the first
    thing wrong in it; nothing of it is taken."""
    err = error_of(text)
    assert err.line == line
    assert str(err).startswith(f"klines.toml:{line}")
    assert str(err).endswith(message)


def test_read_a_missing_file_is_no_kline_and_bytes_that_are_no_text_an_error(
    tmp_path: Path,
) -> None:
    assert klinefile.read(str(tmp_path / "absent.toml"), NOW) == []
    bad = tmp_path / "klines.toml"
    bad.write_bytes(b'[[kline]]\nmask = "\xff@*"\n')
    with pytest.raises(ConfigFileError, match=r"klines\.toml:2: not UTF-8 text$"):
        klinefile.read(str(bad), NOW)
    klinefile.check(None)
    with pytest.raises(ConfigFileError):
        klinefile.check(str(bad))


def test_write_atomically_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "klines.toml"
    path.write_text("old\n")
    klinefile.write_atomically(str(path), "new\n")
    assert path.read_text() == "new\n"
    assert os.listdir(tmp_path) == ["klines.toml"]


def test_a_failed_write_leaves_the_old_file(tmp_path: Path) -> None:
    """The new text goes to a temporary file first: if that fails, the old file stays
    whole, and no temporary is left behind."""
    path = tmp_path / "klines.toml"
    path.write_text("old\n")
    os.mkdir(f"{path}.{os.getpid()}.tmp")  # the temporary's name is taken: the open fails
    with pytest.raises(OSError):
        klinefile.write_atomically(str(path), "new\n")
    assert path.read_text() == "old\n"


# -- the keeper ------------------------------------------------------------------------------------


def test_load_puts_the_files_klines_in_force(tmp_path: Path) -> None:
    """At start, before anything is decided: the file's K-lines become the state's (expired
    ones dropped), and what was loaded is not written back."""
    path = tmp_path / "klines.toml"
    expired = KLine(b"~old@*", b"ada", b"gone", NOW - 9000, NOW - 1)
    path.write_text(klinefile.render([*LINES, expired]))
    state = State()
    keeper = KLineFile(str(path))
    keeper.load(state, NOW)
    assert list(state.klines.values()) == LINES
    before = path.stat().st_mtime_ns
    keeper.maybe_save(state, NOW)
    keeper.close()
    assert path.stat().st_mtime_ns == before


def test_save_after_a_change_off_the_loop(tmp_path: Path) -> None:
    """After a turn that changed the K-lines, the keeper renders them (on the loop) and a
    thread of its own writes them; ``close`` waits for that write. Only K-lines in force are
    written."""
    path = tmp_path / "klines.toml"
    state = State()
    keeper = KLineFile(str(path))
    keeper.load(state, NOW)  # no file yet: no K-line
    assert not path.exists()
    state.apply(make(EKline, 1, *LINES[0], (), NOW))
    state.apply(make(EKline, 1, *LINES[1], (), NOW))
    state.apply(make(EUnkline, 1, LINES[0].mask, NOW))
    keeper.maybe_save(state, NOW)
    assert keeper._thread is not None and keeper._thread is not threading.current_thread()
    keeper.close()
    assert klinefile.read(str(path), NOW) == [LINES[1]]
    assert not keeper._thread.is_alive()


def test_a_file_unusable_at_a_restart_is_logged_and_the_process_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``fastchat serve`` checked the file at start; if it is broken when a hub (or the one
    worker) restarts later, that process says so and goes on (at several workers the
    replicas still hold every K-line; the file is rewritten at the next change)."""
    path = tmp_path / "klines.toml"
    path.write_text('[[kline]]\nmask = "*@*"\n')
    state = State()
    with caplog.at_level(logging.ERROR, logger="fastchat.klines"):
        KLineFile(str(path)).load(state, NOW)
    assert state.klines == {}
    assert f"K-line file unusable, going on without its K-lines: {path}:2:" in caplog.text


def test_no_file_no_io(tmp_path: Path) -> None:
    """``kline_file`` none (no --config): nothing is read or written, ever."""
    state = State()
    keeper = KLineFile(None)
    keeper.load(state, NOW)
    state.apply(make(EKline, 1, *LINES[0], (), NOW))
    keeper.maybe_save(state, NOW)
    keeper.close()
    assert keeper._thread is None and fold(LINES[0].mask) in state.klines
