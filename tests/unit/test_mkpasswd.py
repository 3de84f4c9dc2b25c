"""``fastchat mkpasswd``: the hash of a password, for the ``password`` of an ``[[oper]]``."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from fastchat import cli
from fastchat.server import passwords


def mkpasswd(stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "fastchat.cli", "mkpasswd", "--stdin"],
        input=stdin,
        capture_output=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize(
    "stdin", [b"s3cret pass\n", b"s3cret pass", b"s3cret pass\r\n", b"s3cret pass\nnot read\n"]
)
def test_stdin_gives_a_hash_of_the_first_line(stdin: bytes) -> None:
    done = mkpasswd(stdin)
    assert done.returncode == 0, done.stderr
    assert done.stderr == b""
    (stored,) = done.stdout.decode().splitlines()
    assert passwords.is_hash(stored)
    assert passwords.verify(b"s3cret pass", stored)
    assert not passwords.verify(b"s3cret", stored)


def test_each_hash_has_its_own_salt() -> None:
    first, second = (mkpasswd(b"same\n").stdout for _ in range(2))
    assert first != second


@pytest.mark.parametrize("stdin", [b"", b"\n"])
def test_an_empty_password_is_refused(stdin: bytes) -> None:
    done = mkpasswd(stdin)
    assert done.returncode == 1
    assert done.stdout == b""
    assert done.stderr == b"fastchat mkpasswd: empty password\n"


@pytest.fixture
def typed(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """What the user types at the ``getpass`` prompts, in order (no terminal needed); at the
    end, every answer was asked for, by the two prompts."""
    answers: list[str] = []
    prompts: list[str] = []

    def fake_getpass(prompt: str = "Password: ", stream: object = None) -> str:
        prompts.append(prompt)
        return answers.pop(0)

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    yield answers
    assert answers == []
    assert prompts == ["Password: ", "Again: "]


def test_the_prompt_asks_twice_and_prints_the_hash(
    typed: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    typed += ["été secret", "été secret"]
    assert cli.main(["mkpasswd"]) == 0
    out = capsys.readouterr()
    assert passwords.verify("été secret".encode(), out.out.strip())
    assert out.err == ""


@pytest.mark.parametrize(
    ("answers", "error"),
    [
        (["one", "two"], "fastchat mkpasswd: the passwords differ\n"),
        (["", ""], "fastchat mkpasswd: empty password\n"),
    ],
)
def test_the_prompt_refuses_a_mismatch_or_nothing(
    typed: list[str], capsys: pytest.CaptureFixture[str], answers: list[str], error: str
) -> None:
    typed += answers
    assert cli.main(["mkpasswd"]) == 1
    out = capsys.readouterr()
    assert (out.out, out.err) == ("", error)
