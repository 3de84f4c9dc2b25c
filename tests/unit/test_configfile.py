"""The config file (``fastchat serve --config FILE``): TOML read into a Config, every error
naming the file, the line and the key; the file under the command line's flags; ``[[oper]]``
tables; file names relative to the file's folder; the example file."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import pytest

from fastchat.server import config, configfile, passwords
from fastchat.server.config import Config, ConfigError, OperBlock
from fastchat.server.configfile import ConfigFileError

ROOT = Path(__file__).resolve().parents[2]

# One hash for the whole module: scrypt costs tens of milliseconds by design.
HASH = passwords.hash_password(b"secret", salt=b"0123456789abcdef")


def write(folder: Path, text: str, name: str = "fastchat.toml") -> str:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def error_of(path: str) -> ConfigFileError:
    with pytest.raises(ConfigFileError) as caught:
        configfile.read(path)
    return caught.value


# -- what a good file gives ----------------------------------------------------------------------


def test_top_level_keys_are_the_settings(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'server_name = "irc.example.org"\nworkers = 3\nflood_control = false\n'
        'autojoin = "#a,#b"\nflood_rate = 2\n',
    )
    got = configfile.read(path)
    assert got.config == dataclasses.replace(
        Config(),
        server_name=b"irc.example.org",
        workers=3,
        flood_control=False,
        autojoin=(b"#a", b"#b"),
        flood_rate=2.0,
        kline_file=str(tmp_path / "klines.toml"),
    )
    assert got.settings == {
        "server_name": "irc.example.org",
        "workers": 3,
        "flood_control": False,
        "autojoin": "#a,#b",
        "flood_rate": 2,
    }
    assert got.opers == ()


def test_an_empty_file_is_the_defaults(tmp_path: Path) -> None:
    """The defaults, and the K-lines kept in ``klines.toml`` next to the file."""
    assert configfile.read(write(tmp_path, "# nothing\n")).config == dataclasses.replace(
        Config(), kline_file=str(tmp_path / "klines.toml")
    )


@pytest.mark.parametrize(
    ("written", "where"),
    [('"bans.toml"', "{folder}/bans.toml"), ('"/var/lib/bans.toml"', "/var/lib/bans.toml"),
     ('""', None)],
)  # fmt: skip
def test_kline_file_is_relative_to_the_file_or_none(
    tmp_path: Path, written: str, where: str | None
) -> None:
    """``kline_file``, like every file name in the file, is relative to the file's folder;
    ``""`` keeps no file (K-lines last until the server stops); a flag overrides it."""
    path = write(tmp_path, f"kline_file = {written}\n")
    expected = where.format(folder=tmp_path) if where is not None else None
    assert configfile.read(path).config.kline_file == expected
    assert configfile.load(path, {"kline_file": ""}).kline_file is None
    assert configfile.load(path, {"kline_file": "x.toml"}).kline_file == "x.toml"


def test_oper_tables_become_oper_blocks(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""\
nicklen = 20

[[oper]]
name = "admin"
password = "{HASH}"
hosts = ["*@127.0.0.1", "root@*.example.org"]
privileges = ["kill", "rehash"]

[[oper]]
name = "helper"
password = "{HASH}"
""",
    )
    got = configfile.read(path)
    assert got.opers == (
        OperBlock(
            b"admin", HASH, (b"*@127.0.0.1", b"root@*.example.org"), frozenset({"kill", "rehash"})
        ),
        OperBlock(b"helper", HASH, (b"*@*",), frozenset()),
    )
    assert got.config.opers == got.opers
    assert got.config.nicklen == 20
    assert passwords.verify(b"secret", got.opers[0].password)


def test_opers_may_be_written_inline(tmp_path: Path) -> None:
    path = write(tmp_path, f'oper = [{{ name = "a", password = "{HASH}" }}]\n')
    assert configfile.read(path).opers == (OperBlock(b"a", HASH),)


# -- precedence ----------------------------------------------------------------------------------


def test_flags_override_the_file_and_the_file_overrides_the_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "nicklen = 12\ntopiclen = 100\n")
    cfg = configfile.load(path, {"nicklen": 9, "kicklen": 80})
    assert (cfg.nicklen, cfg.topiclen, cfg.kicklen) == (9, 100, 80)
    assert cfg.channellen == Config().channellen


def test_no_file_is_the_defaults_and_the_flags() -> None:
    assert configfile.load(None, {}) == Config()
    assert configfile.load(None, {"nicklen": 9}) == dataclasses.replace(Config(), nicklen=9)


def test_flags_leave_the_opers_of_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, f'[[oper]]\nname = "a"\npassword = "{HASH}"\n')
    assert configfile.load(path, {"port": 7000}).opers == (OperBlock(b"a", HASH),)


def test_a_bad_flag_is_a_config_error_naming_its_key(tmp_path: Path) -> None:
    path = write(tmp_path, "nicklen = 12\n")
    with pytest.raises(ConfigError, match="setting 'motd_file'"):
        configfile.load(path, {"motd_file": str(tmp_path / "absent")})


def test_load_reads_the_file_anew_each_time(tmp_path: Path) -> None:
    """What a reload will rely on: the same call, a changed file, the new values."""
    path = write(tmp_path, "nicklen = 12\n")
    assert configfile.load(path, {"port": 1}).nicklen == 12
    write(tmp_path, "nicklen = 14\n")
    assert configfile.load(path, {"port": 1}).nicklen == 14
    write(tmp_path, "nicklen = [14]\n")
    with pytest.raises(ConfigFileError):
        configfile.load(path, {"port": 1})


# -- file names ----------------------------------------------------------------------------------


def test_a_relative_motd_file_is_found_next_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    (folder / "motd.txt").write_bytes(b"from the file's folder\n")
    (tmp_path / "motd.txt").write_bytes(b"from the working directory\n")
    path = write(folder, 'motd_file = "motd.txt"\n')
    monkeypatch.chdir(tmp_path)
    got = configfile.read(path)
    assert got.config.motd == (b"from the file's folder",)
    assert got.settings["motd_file"] == str(folder / "motd.txt")
    # a relative path to the config file itself works the same
    assert configfile.read("etc/fastchat.toml").config.motd == (b"from the file's folder",)


def test_an_absolute_motd_file_is_taken_as_it_is(tmp_path: Path) -> None:
    motd = tmp_path / "elsewhere.txt"
    motd.write_bytes(b"absolute\n")
    folder = tmp_path / "etc"
    folder.mkdir()
    path = write(folder, f"motd_file = {str(motd)!r}\n")
    assert configfile.read(path).config.motd == (b"absolute",)


def test_an_empty_motd_file_is_the_built_in_line(tmp_path: Path) -> None:
    assert configfile.read(write(tmp_path, 'motd_file = ""\n')).config.motd == Config().motd


# -- every error names the file, the line and the key --------------------------------------------


@pytest.mark.parametrize(
    ("text", "message", "key"),
    [
        pytest.param(
            "nicklen = 12\n\nnicklenn = 3\n",
            "3: unknown setting 'nicklenn' (did you mean 'nicklen'?)",
            "nicklenn",
            id="unknown-key",
        ),
        pytest.param(
            "# limits\nnicklen = 12\ntopiclen = '300'\n",
            "3: setting 'topiclen': expected int, got str '300'",
            "topiclen",
            id="wrong-type",
        ),
        pytest.param(
            "flood_control = 0\n",
            "1: setting 'flood_control': expected bool, got int 0",
            "flood_control",
            id="int-for-bool",
        ),
        pytest.param(
            f"[[oper]]\nname = 'a'\npassword = '{HASH}'\nhosts = [\n  '*@a',  # [\n"
            "  '*@b',\n]\nprivileges = ['god']\n",
            "8: oper 'a', key 'privileges': unknown privilege 'god' (known: accounts, chghost, kill, "
            "kline, override, rehash, see, wallops)",
            "privileges",
            id="after-a-multi-line-array",
        ),
        pytest.param(
            f"oper = [\n  {{ name = 'a', password = '{HASH}' }},\n"
            "  { name = 'b', password = 'x' },\n]\n",
            "1: oper 'b', key 'password': not a password hash (make one with `fastchat mkpasswd`)",
            "password",
            id="inline-oper",
        ),
        pytest.param(
            'host = """\nnicklen = 1\n"""\nnicklen = "x"\n',
            "4: setting 'nicklen': expected int, got str 'x'",
            "nicklen",
            id="after-a-multi-line-string",
        ),
        pytest.param(
            '"nicklen" = "x"\n',
            "1: setting 'nicklen': expected int, got str 'x'",
            "nicklen",
            id="quoted-key",
        ),
        pytest.param(
            "port = 1\n[limits]\nnicklen = 3\n",
            "2: unknown setting 'limits'",
            "limits",
            id="unknown-table",
        ),
        pytest.param(
            "motd_file = 'absent.txt'\n",
            "1: setting 'motd_file': [Errno 2] No such file or directory: '{folder}/absent.txt'",
            "motd_file",
            id="missing-motd-file",
        ),
        pytest.param(
            "oper = 'admin'\n",
            "1: 'oper' must be [[oper]] tables",
            "oper",
            id="oper-not-tables",
        ),
        pytest.param(
            "port = 1\n\n[[oper]]\nname = 'admin'\n",
            "3: oper #1: missing key 'password'",
            "password",
            id="oper-missing-password",
        ),
        pytest.param(
            f"[[oper]]\npassword = '{HASH}'\n",
            "1: oper #1: missing key 'name'",
            "name",
            id="oper-missing-name",
        ),
        pytest.param(
            "[[oper]]\nname = 'admin'\npassword = 'hunter2'\n",
            "3: oper 'admin', key 'password': not a password hash (make one with "
            "`fastchat mkpasswd`)",
            "password",
            id="oper-malformed-hash",
        ),
        pytest.param(
            f"[[oper]]\nname = 'admin'\npassword = '{HASH}'\nprivileges = ['kill', 'god']\n",
            "4: oper 'admin', key 'privileges': unknown privilege 'god' (known: accounts, chghost, kill, "
            "kline, override, rehash, see, wallops)",
            "privileges",
            id="oper-unknown-privilege",
        ),
        pytest.param(
            f"[[oper]]\nname = 'admin'\npassword = '{HASH}'\nprivileges = 'kill'\n",
            "4: oper 'admin', key 'privileges': expected a list of strings, got 'kill'",
            "privileges",
            id="oper-privileges-not-a-list",
        ),
        pytest.param(
            f"[[oper]]\nname = 'admin'\npassword = '{HASH}'\nhosts = ['127.0.0.1']\n",
            "4: oper 'admin', key 'hosts': '127.0.0.1' is not a user@host mask",
            "hosts",
            id="oper-bad-mask",
        ),
        pytest.param(
            f"[[oper]]\nname = 'admin'\npassword = '{HASH}'\nhosts = []\n",
            "4: oper 'admin', key 'hosts': an empty list lets nobody in; leave it out for any host",
            "hosts",
            id="oper-no-hosts",
        ),
        pytest.param(
            f"[[oper]]\nname = 'admin'\npassword = '{HASH}'\nclass = 'x'\n",
            "4: oper 'admin', key 'class': unknown key (an [[oper]] has name, password, "
            "hosts, privileges)",
            "class",
            id="oper-unknown-key",
        ),
        pytest.param(
            f"[[oper]]\nname = 42\npassword = '{HASH}'\n",
            "2: oper #1, key 'name': expected a string, got int",
            "name",
            id="oper-name-not-a-string",
        ),
        pytest.param(
            f"[[oper]]\nname = 'an admin'\npassword = '{HASH}'\n",
            "2: oper #1, key 'name': 'an admin' is not a name OPER can give (no spaces, no ':' "
            "first)",
            "name",
            id="oper-name-with-a-space",
        ),
        pytest.param(
            f"[[oper]]\nname = 'a'\npassword = '{HASH}'\n\n"
            f"[[oper]]\nname = 'b'\npassword = '{HASH}'\n\n"
            f"[[oper]]\npassword = '{HASH}'\nname = 'a'\n",
            "11: oper 'a', key 'name': a second [[oper]] with this name (the first is at line 2)",
            "name",
            id="oper-twice",
        ),
        pytest.param(
            f"[[oper]]\nname = 'a'\npassword = '{HASH}'\n\n[[oper]]\nname = 'b'\n",
            "5: oper #2: missing key 'password'",
            "password",
            id="second-oper-missing-password",
        ),
    ],
)
def test_each_error_names_the_file_the_line_and_the_key(
    tmp_path: Path, text: str, message: str, key: str
) -> None:
    path = write(tmp_path, text)
    error = error_of(path)
    assert str(error) == f"{path}:{message.format(folder=tmp_path)}"
    assert error.path == path
    assert error.line == int(re.split(r"[:]", message, maxsplit=1)[0])
    assert error.key == key
    assert "\n" not in str(error)
    assert isinstance(error, ConfigError)  # what `fastchat serve` reports


@pytest.mark.parametrize(
    ("text", "where", "key"),
    [
        pytest.param("nicklen = 3 0\n", "1:13", "nicklen", id="two-values"),
        pytest.param("port = 1\nnicklen = 3\nnicklen = 4\n", "3:12", "nicklen", id="twice"),
        pytest.param("port = 1\n'motd_file' =\n", "2:14", "motd_file", id="no-value"),
        pytest.param("[[oper]]\nname = 'a'\n[oper]\n", "3:6", "oper", id="table-twice"),
        pytest.param("port = 1\nmotd_file = 'a\n", "2", "", id="unterminated-at-the-end"),
    ],
)
def test_a_toml_syntax_error_names_the_file_the_line_and_the_key(
    tmp_path: Path, text: str, where: str, key: str
) -> None:
    """tomllib's own words, after the file, the line and column it gives (or the last line,
    when it noticed at the end), and the key written on that line."""
    path = write(tmp_path, text)
    error = error_of(path)
    assert str(error).startswith(f"{path}:{where}: invalid TOML: ")
    assert str(error).endswith(f" (key {key!r})" if key else ")")
    assert "(at line" not in str(error) and "\n" not in str(error)
    assert (error.line, error.key) == (int(where.split(":")[0]), key)


def test_a_malformed_hash_is_never_quoted(tmp_path: Path) -> None:
    """A password written where its hash belongs must not reach the logs."""
    path = write(tmp_path, "[[oper]]\nname = 'admin'\npassword = 'my-real-password'\n")
    assert "my-real-password" not in str(error_of(path))


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    path = str(tmp_path / "absent.toml")
    error = error_of(path)
    assert str(error) == f"{path}: cannot read: No such file or directory"
    assert error.line is None


def test_a_file_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b"nicklen = 3\nserver_name = 'caf\xe9'\n")
    assert str(error_of(str(path))) == f"{path}:2: not UTF-8 text"


# -- the example file and the conformance controller's file --------------------------------------


def test_the_example_file_loads_as_it_is() -> None:
    got = configfile.read(ROOT / "fastchat.example.toml")
    assert got.settings == {}
    assert got.config == dataclasses.replace(Config(), kline_file=str(ROOT / "klines.toml"))


def test_the_example_file_uncommented_loads_and_shows_the_defaults(tmp_path: Path) -> None:
    """Every ``# key = value`` line of the example, uncommented, is a valid setting whose value
    is the default (except where the row shows an example instead), and its [[oper]] is a
    valid oper whose password is the documented one."""
    example = (ROOT / "fastchat.example.toml").read_text(encoding="utf-8")
    uncommented = re.sub(r"(?m)^# (\[\[oper\]\]$|[a-z0-9_]+ = )", r"\1", example)
    (tmp_path / "motd.txt").write_bytes(b"example motd\n")
    got = configfile.read(write(tmp_path, uncommented))
    shown = {row.key for row in config.SETTINGS if not row.hidden}
    assert set(got.settings) == shown
    assert got.config == dataclasses.replace(
        Config(),
        motd=(b"example motd",),
        kline_file=str(tmp_path / "klines.toml"),
        data_dir=str(tmp_path / "fastchat-data"),
        opers=got.opers,
    )
    (oper,) = got.opers
    assert oper.name == b"admin"
    assert oper.privileges == config.PRIVILEGES
    assert passwords.verify(config.EXAMPLE_OPER_PASSWORD, oper.password)


def _controller_constants() -> dict[str, object]:
    """The module-level constants of conformance/fastchat_controller.py (its venv is irctest's,
    which cannot import fastchat, nor this one irctest: read them from its source)."""
    tree = ast.parse((ROOT / "conformance/fastchat_controller.py").read_text(encoding="utf-8"))
    return {
        target.id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name) and target.id.isupper()
        if isinstance(node.value, ast.Constant | ast.Tuple)
    }


def test_the_conformance_controllers_config_file_loads_with_every_privilege(
    tmp_path: Path,
) -> None:
    constants = _controller_constants()
    assert frozenset(constants["OPER_PRIVILEGES"]) == config.PRIVILEGES  # type: ignore[arg-type]
    template = constants["CONFIG_TEMPLATE"]
    assert isinstance(template, str)
    text = template.format(
        name=constants["OPER_NAME"],
        password_hash=HASH,
        privileges=", ".join(f'"{p}"' for p in sorted(config.PRIVILEGES)),
    )
    (oper,) = configfile.read(write(tmp_path, text)).opers
    assert oper == OperBlock(b"operuser", HASH, (b"*@*",), config.PRIVILEGES)
    assert constants["OPER_PASSWORD"] == "operpassword"
