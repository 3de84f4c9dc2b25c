"""The settings of ``fastchat serve``: each declared once in config.py, and the flags, the
file keys and the README table all derived from those rows."""

from __future__ import annotations

import argparse
import ast
import dataclasses
from pathlib import Path

import pytest

from fastchat.server import config, passwords
from fastchat.server.config import SETTINGS, Config, ConfigError, from_args, from_mapping

ROOT = Path(__file__).resolve().parents[2]

# Config() as it was before the settings became rows; a changed default must be deliberate.
OLD_DEFAULTS = {
    "host": "0.0.0.0",
    "port": 6667,
    "workers": config.AUTO,  # issue 14: decided at start (runtime/limits.py), was cpu_count
    "placement": "affine",  # channel-affine placement (issue 14): kernel before
    "placement_interval": 30.0,
    "tls_port": 0,  # TLS is off unless asked for
    "tls_cert": None,
    "tls_key": None,
    "sts_duration": -1,
    "sts_preload": False,
    "tls_handshake_timeout": 10.0,
    "web_port": 0,
    "web_tls_port": 0,
    "web_host": "",
    "web_root": None,
    "web_origins": (),
    "web_handshake_timeout": 10.0,
    "server_name": b"fastchat.local",
    "network": b"fastchat",
    "autojoin": (b"#lobby",),
    "lobby_delay_join_at": 200,  # issue 14: the lobby gets +D (delayed join) past 200
    "password": None,
    "motd": (b"Welcome to fastchat.",),
    "kline_file": None,  # without --config: K-lines last until the server stops
    "data_dir": "./fastchat-data",
    "history": True,
    "history_days": 0,
    "history_limit": 0,
    "history_replay": 10,
    "history_replay_minutes": 0,
    "chathistory_max": 100,
    "nicklen": 30,
    "channellen": 50,
    "topiclen": 390,
    "kicklen": 255,
    "awaylen": 200,
    "client_tag_deny": (),
    "nick_protection": "warn",
    "nick_protection_grace": 30,
    "password_min_length": 6,
    "register_before_connect": False,
    "register_requires_email": False,
    "register_verify": False,
    "smtp_server": None,
    "mail_from": "",
    "utf8_only": True,
    "whowas_size": 1000,
    "server_info": b"fastchat IRC server",
    "admin_location": b"",
    "admin_name": b"",
    "admin_email": b"",
    "max_channels": 50,
    "max_targets": 4,
    "max_monitor": 100,
    "max_clients": config.AUTO,  # issue 14: from the descriptors (was 0, no limit)
    "max_clients_per_ip": 0,
    "sendq": 1 << 20,
    "recvq": 8192,
    "max_line": 512,
    "flood_control": True,
    "flood_burst": 10,
    "flood_rate": 5.0,
    "registration_timeout": 60.0,
    "ping_interval": 120.0,
    "ping_timeout": 60.0,
    "shutdown_grace": 3.0,
    "log_level": "INFO",
    "test_hooks": False,
    "opers": (),
}


def parse(*argv: str) -> Config:
    parser = argparse.ArgumentParser()
    config.add_arguments(parser)
    return from_args(parser.parse_args(argv))


def test_every_config_field_is_one_row_with_a_unique_flag_and_key() -> None:
    names = [s.name for s in SETTINGS]
    tables = {"opers"}  # lists of tables: only the config file sets them
    assert names == [f.name for f in dataclasses.fields(Config) if f.name not in tables]
    assert len({s.flag for s in SETTINGS}) == len(SETTINGS)
    assert len({s.key for s in SETTINGS}) == len(SETTINGS)


@pytest.mark.parametrize("row", SETTINGS, ids=lambda s: s.key)
def test_the_key_is_the_flag_without_dashes(row: config.Setting) -> None:
    flag = row.flag.removeprefix("--")
    if row.inverted:
        assert row.type is bool
        flag = flag.removeprefix("no-")
    assert row.key == flag.replace("-", "_")


def test_no_flags_give_the_old_defaults() -> None:
    assert dataclasses.asdict(parse()) == OLD_DEFAULTS
    assert dataclasses.asdict(Config()) == OLD_DEFAULTS


def test_the_help_keeps_every_flag_and_hides_test_hooks() -> None:
    parser = argparse.ArgumentParser()
    config.add_arguments(parser)
    text = parser.format_help()
    for flag in ["--host", "--port", "--workers", "--server-name", "--network", "--autojoin"]:
        assert flag in text
    for flag in ["--password", "--motd-file", "--no-flood-control", "--log-level"]:
        assert flag in text
    for flag in ["--kicklen", "--awaylen", "--shutdown-grace"]:
        assert flag in text
    assert "--test-hooks" not in text
    assert parse("--test-hooks").test_hooks is True


def test_no_flood_control_turns_the_bool_off() -> None:
    assert parse("--no-flood-control").flood_control is False


@pytest.mark.parametrize(
    ("value", "channels"),
    [("#lobby", (b"#lobby",)), ("#a,#b", (b"#a", b"#b")), ("#a,,#b,", (b"#a", b"#b")), ("", ())],
)
def test_autojoin_is_a_comma_separated_list(value: str, channels: tuple[bytes, ...]) -> None:
    assert parse("--autojoin", value).autojoin == channels


def test_names_are_str_on_the_command_line_and_bytes_in_config() -> None:
    cfg = parse("--server-name", "irc.example.org", "--network", "Example")
    assert (cfg.server_name, cfg.network) == (b"irc.example.org", b"Example")


@pytest.mark.parametrize(("argv", "password"), [((), None), (("--password", "s"), b"s")])
def test_password_is_none_unless_given(argv: tuple[str, ...], password: bytes | None) -> None:
    assert parse(*argv).password == password


def test_motd_file_is_read_into_lines(tmp_path: Path) -> None:
    motd = tmp_path / "motd.txt"
    motd.write_bytes(b"first line\r\n\xc3\xa9t\xc3\xa9\nlast")
    assert parse("--motd-file", str(motd)).motd == (b"first line", "été".encode(), b"last")


def test_a_missing_motd_file_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'motd_file'"):
        parse("--motd-file", str(tmp_path / "absent"))


def test_log_level_is_upper_cased_and_workers_at_least_one() -> None:
    cfg = parse("--log-level", "debug", "--workers", "0")
    assert (cfg.log_level, cfg.workers) == ("DEBUG", 1)


def test_numbers_parse_as_their_type() -> None:
    cfg = parse("--kicklen", "80", "--flood-rate", "2", "--shutdown-grace", "0.5")
    assert (cfg.kicklen, cfg.flood_rate, cfg.shutdown_grace) == (80, 2.0, 0.5)
    assert isinstance(cfg.flood_rate, float)


def test_file_keys_map_to_config_values(tmp_path: Path) -> None:
    motd = tmp_path / "motd"
    motd.write_bytes(b"hi\n")
    cfg = from_mapping(
        {
            "flood_control": False,
            "autojoin": "#a,#b",
            "motd_file": str(motd),
            "server_name": "irc.example.org",
            "flood_rate": 3,
            "nicklen": 12,
        }
    )
    assert cfg == dataclasses.replace(
        Config(),
        flood_control=False,
        autojoin=(b"#a", b"#b"),
        motd=(b"hi",),
        server_name=b"irc.example.org",
        flood_rate=3.0,
        nicklen=12,
    )


def test_file_keys_change_only_what_they_name() -> None:
    base = from_mapping({"port": 7000})
    assert from_mapping({"nicklen": 9}, base) == dataclasses.replace(base, nicklen=9)


def test_an_unknown_key_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="unknown setting 'no_flood_control'"):
        from_mapping({"no_flood_control": True})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("nicklen", "30"),
        ("nicklen", True),
        ("nicklen", 1.5),
        ("flood_rate", "fast"),
        ("flood_control", 0),
        ("server_name", b"bytes"),
        ("autojoin", ["#a"]),
    ],
)
def test_a_value_of_the_wrong_type_is_refused_by_key(key: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"setting '{key}': expected"):
        from_mapping({key: value})


def test_the_readme_table_is_current() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert config.with_settings_table(readme) == readme, "run `make settings-doc`"


def test_the_table_lists_every_visible_setting_once() -> None:
    table = config.markdown_table()
    for row in SETTINGS:
        assert (table.count(f"| `{row.key}` |") == 1) is not row.hidden


def test_config_module_stays_pure() -> None:
    """config.py imports nothing that does I/O or reads the clock (checked in its source:
    the interpreter itself has imported ``time`` before any test runs)."""
    tree = ast.parse((ROOT / "fastchat/server/config.py").read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    forbidden = {"time", "socket", "selectors", "ssl", "sqlite3", "logging", "datetime"}
    assert not imported & forbidden


def test_the_example_config_file_is_current() -> None:
    example = (ROOT / "fastchat.example.toml").read_text(encoding="utf-8")
    assert example == config.example_file(), "run `make settings-doc`"


def test_the_example_shows_every_visible_setting_once_commented_out() -> None:
    example = config.example_file()
    settings, oper = example.split("\n# [[oper]]\n")
    for row in SETTINGS:
        assert (settings.count(f"\n# {row.key} = ") == 1) is not row.hidden
    assert oper.startswith('# name = "admin"\n')
    assert "\n[" not in example and all(
        line.startswith("#") for line in example.splitlines() if line
    )


def test_the_example_oper_password_is_the_documented_one() -> None:
    oper = config.example_file().split("\n# [[oper]]\n")[1]
    line = next(x for x in oper.splitlines() if x.startswith("# password = "))
    stored = line.split('"')[1]
    assert passwords.verify(config.EXAMPLE_OPER_PASSWORD, stored)
    assert config.EXAMPLE_OPER_PASSWORD.decode() in config.example_file()


def test_web_origins_are_lowercased_without_a_slash_and_checked() -> None:
    config = parse("--web-origins", "https://Chat.Example.org/, http://b.example:8080,*")
    assert config.web_origins == ("https://chat.example.org", "http://b.example:8080", "*")
    assert parse().web_origins == ()
    with pytest.raises(ConfigError, match="'web_origins'"):
        from_mapping({"web_origins": "chat.example.org"})


def test_max_line_is_between_rfc_1459_and_the_limit() -> None:
    assert parse().max_line == 512
    assert parse("--max-line", "2048").max_line == 2048
    for bad in ("511", "16385"):
        with pytest.raises(ConfigError, match="'max_line'"):
            parse("--max-line", bad)
