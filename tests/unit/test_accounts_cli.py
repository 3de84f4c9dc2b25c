"""``fastchat accounts create|list|passwd|delete``: accounts in the store file, from the
command line; names follow the rules of nicks, taken and unknown names are refused politely."""

from __future__ import annotations

import getpass
import subprocess
import sys
from pathlib import Path

import pytest

from fastchat import cli
from fastchat.server import passwords
from fastchat.server.store import db, reader


@pytest.fixture
def data_dir(tmp_path: Path) -> str:
    return str(tmp_path / "data")


@pytest.fixture
def typed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What the user types at the getpass prompts, in order."""
    answers: list[str] = []
    monkeypatch.setattr(getpass, "getpass", lambda prompt="", stream=None: answers.pop(0))
    return answers


def accounts(*args: str) -> int:
    return cli.main(["accounts", *args])


def stored(data_dir: str) -> dict[str, tuple[str, str, str]]:
    rows = reader.load_accounts(db.path_in(data_dir))
    return {r.name_folded: (r.name, r.password_hash, r.email) for r in rows}


def test_create_list_passwd_delete(
    data_dir: str, typed: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    typed += ["pw one", "pw one"]
    assert accounts("create", "Alice[m]", "--data-dir", data_dir, "--email", "a@x") == 0
    assert capsys.readouterr().out == "created the account 'Alice[m]'\n"
    name, hashed, email = stored(data_dir)["alice{m}"]
    assert (name, email) == ("Alice[m]", "a@x")
    assert passwords.verify(b"pw one", hashed)

    assert accounts("list", "--data-dir", data_dir) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("Alice[m]\t") and line.endswith("\ta@x\tverified")

    typed += ["pw two", "pw two"]
    assert accounts("passwd", "ALICE{M}", "--data-dir", data_dir) == 0
    assert passwords.verify(b"pw two", stored(data_dir)["alice{m}"][1])

    assert accounts("delete", "alice[m]", "--data-dir", data_dir) == 0
    assert stored(data_dir) == {}
    assert typed == []


def test_a_taken_name_is_refused_before_any_prompt(
    data_dir: str, typed: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    typed += ["pw", "pw"]
    assert accounts("create", "alice", "--data-dir", data_dir) == 0
    capsys.readouterr()
    assert accounts("create", "ALICE", "--data-dir", data_dir) == 1
    assert (
        capsys.readouterr().err == "fastchat accounts create: the account 'ALICE' already exists\n"
    )
    assert stored(data_dir)["alice"][0] == "alice"


@pytest.mark.parametrize("action", ["passwd", "delete"])
def test_an_unknown_name_is_refused(
    action: str, data_dir: str, typed: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert accounts(action, "bob", "--data-dir", data_dir) == 1
    assert capsys.readouterr().err == f"fastchat accounts {action}: there is no account 'bob'\n"


@pytest.mark.parametrize("name", ["9lives", "a b", "a.b", "#chan", "x" * 31, ""])
def test_a_name_that_could_not_be_a_nick_is_refused(
    name: str, data_dir: str, typed: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert accounts("create", name, "--data-dir", data_dir) == 1
    assert "follows the rules of a nick" in capsys.readouterr().err
    assert stored(data_dir) == {}


def test_differing_passwords_create_nothing(
    data_dir: str, typed: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    typed += ["one", "two"]
    assert accounts("create", "alice", "--data-dir", data_dir) == 1
    assert capsys.readouterr().err == "fastchat accounts create: the passwords differ\n"
    assert stored(data_dir) == {}


def test_the_config_file_gives_the_data_dir_and_nicklen(
    tmp_path: Path, typed: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "fastchat.toml"
    config.write_text('data_dir = "store"\nnicklen = 5\n')
    typed += ["pw", "pw"]
    assert accounts("create", "alice", "--config", str(config)) == 0
    assert list(stored(str(tmp_path / "store"))) == ["alice"]  # relative to the file's folder
    assert accounts("create", "alice2", "--config", str(config)) == 1
    assert "at most 5 characters" in capsys.readouterr().err


def test_a_data_dir_that_cannot_be_made_is_one_line_and_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("")
    assert accounts("list", "--data-dir", str(tmp_path / "file" / "data")) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("fastchat accounts list: cannot create the data directory")


def test_password_stdin_for_scripts(data_dir: str) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "fastchat.cli",
            "accounts",
            "create",
            "bot",
            "--data-dir",
            data_dir,
            "--password-stdin",
        ],
        input=b"s3cret\nnot read\n",
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert passwords.verify(b"s3cret", stored(data_dir)["bot"][1])


def test_cert_add_list_del(
    data_dir: str, typed: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """``fastchat accounts cert add|list|del``: fingerprints as openssl prints them (colons,
    upper case) are stored bare and lowercase; one account's fingerprint is refused to
    another; a malformed one, an unknown account and a missing one are refused (status 1)."""
    typed += ["pw one", "pw one", "pw two", "pw two"]
    assert accounts("create", "ann", "--data-dir", data_dir) == 0
    assert accounts("create", "bob", "--data-dir", data_dir) == 0
    fp = "ab" * 31 + "cd"
    colons = ":".join(fp[i : i + 2] for i in range(0, 64, 2)).upper()
    capsys.readouterr()
    assert accounts("cert", "add", "ann", colons, "--data-dir", data_dir) == 0
    assert capsys.readouterr().out == f"added the fingerprint {fp} of 'ann'\n"
    assert accounts("cert", "list", "ANN", "--data-dir", data_dir) == 0
    assert capsys.readouterr().out == fp + "\n"
    assert reader.load_accounts(db.path_in(data_dir))[0].certfps == fp

    assert accounts("cert", "add", "bob", fp, "--data-dir", data_dir) == 1
    assert "the account 'ann' has" in capsys.readouterr().err
    assert accounts("cert", "add", "bob", "12:34", "--data-dir", data_dir) == 1
    assert "64 hexadecimal digits" in capsys.readouterr().err
    assert accounts("cert", "add", "nobody", fp, "--data-dir", data_dir) == 1
    assert accounts("cert", "del", "bob", fp, "--data-dir", data_dir) == 1
    assert "has no fingerprint" in capsys.readouterr().err

    assert accounts("cert", "del", "ann", fp, "--data-dir", data_dir) == 0
    assert accounts("cert", "list", "ann", "--data-dir", data_dir) == 0
    assert capsys.readouterr().out == f"deleted the fingerprint {fp} of 'ann'\n"
