"""The pure pieces under the curses view: the line editor and text width/wrapping/splitting."""

from __future__ import annotations

import doctest

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastchat.client import editor, session, text
from fastchat.client.editor import LineEditor
from fastchat.client.text import split_utf8, text_width, wrap


@pytest.mark.parametrize("module", [text, editor, session])
def test_doctests(module: object) -> None:
    result = doctest.testmod(module)  # type: ignore[arg-type]
    assert result.failed == 0


def typed(keys: str) -> LineEditor:
    ed = LineEditor()
    ed.insert(keys)
    return ed


def test_insert_and_move() -> None:
    ed = typed("wrld")
    ed.left()
    ed.left()
    ed.left()
    ed.insert("o")
    assert (ed.text, ed.cursor) == ("world", 2)
    ed.home()
    ed.insert(">")
    ed.end()
    ed.insert("!")
    assert ed.text == ">world!"


def test_backspace_and_delete() -> None:
    ed = typed("abc")
    ed.backspace()
    assert ed.text == "ab"
    ed.home()
    ed.delete()
    assert (ed.text, ed.cursor) == ("b", 0)
    ed.backspace()  # at the start: nothing
    assert ed.text == "b"


def test_combining_accent_moves_with_its_letter() -> None:
    ed = typed("e\u0301x")  # é as e + combining acute
    ed.left()
    ed.left()
    assert ed.cursor == 0
    ed.right()
    assert ed.cursor == 2
    ed.backspace()
    assert ed.text == "x"


def test_control_characters_are_not_inserted() -> None:
    assert typed("a\x1b[2Jb\x07").text == "a[2Jb"


def test_kills() -> None:
    ed = typed("one two  three")
    ed.kill_word()
    assert ed.text == "one two  "
    ed.kill_word()
    assert ed.text == "one "
    ed.home()
    ed.right()
    ed.kill_to_end()
    assert ed.text == "o"
    ed.kill_to_start()
    assert ed.text == ""


def test_history_up_down_keeps_draft() -> None:
    ed = LineEditor()
    for line in ("first", "second"):
        ed.insert(line)
        assert ed.submit() == line
    ed.insert("draft")
    ed.up()
    assert ed.text == "second"
    ed.up()
    ed.up()
    assert ed.text == "first"
    ed.down()
    assert ed.text == "second"
    ed.down()
    assert ed.text == "draft"


def test_completion() -> None:
    ed = typed("bo")
    ed.complete(["bob", "carol"])
    assert ed.text == "bob: "
    ed = typed("hi c")
    ed.complete(["Carol", "Carl"])
    assert ed.text == "hi Car"
    ed.complete(["Carol"])
    assert ed.text == "hi Carol "


def test_view_scrolls_to_keep_cursor_visible() -> None:
    ed = typed("abcdefghij")
    visible, col = ed.view(5)
    assert (visible, col) == ("ghij", 4)
    ed.home()
    assert ed.view(5) == ("abcd", 0)


def test_view_counts_wide_characters() -> None:
    ed = typed("日本語")
    visible, col = ed.view(5)
    assert text_width(visible) <= 4 and col == text_width(visible)


def test_wrap_wide_characters_fit() -> None:
    rows = wrap("日本語のテキスト" * 3, 10)
    assert all(text_width(r) <= 10 for r in rows)
    assert "".join(rows) == "日本語のテキスト" * 3


@given(st.text(max_size=200), st.integers(min_value=1, max_value=40))
def test_wrap_never_exceeds_width_and_keeps_words(body: str, width: int) -> None:
    clean = text.sanitize(body)
    rows = wrap(clean, width)
    assert all(text_width(r) <= max(width, 2) for r in rows)
    assert "".join(rows).replace(" ", "") == clean.replace(" ", "")


@given(st.text(max_size=300), st.integers(min_value=4, max_value=60))
def test_split_utf8_round_trips_within_limit(body: str, limit: int) -> None:
    data = body.encode()
    pieces = split_utf8(data, limit)
    assert b"".join(pieces) == data
    assert all(len(p) <= limit for p in pieces)
    for p in pieces:
        p.decode()  # never cut inside a character
