"""A local client's rare fields (``fastchat.server.connection.ClientRare``): registration,
SASL and OPER's fields read as they start until one changes, and only then take memory
(issue 14's idle memory: an idle client has none)."""

from __future__ import annotations

import pytest

from fastchat.server.connection import Client

DEFAULTS = {
    "account": b"",
    "cap_version": 0,
    "certfp": b"",
    "oper_failures": 0,
    "oper_retry_at": 0.0,
    "password": b"",
    "sasl": None,
    "sasl_mechanism": b"",
    "secure": False,
}
CHANGED = {
    "account": b"alice",
    "cap_version": 302,
    "certfp": b"ab" * 32,
    "oper_failures": 2,
    "oper_retry_at": 12.5,
    "password": b"secret",
    "sasl": b"",
    "sasl_mechanism": b"PLAIN",
    "secure": True,
}


def test_a_new_client_reads_the_defaults_and_holds_no_rare_fields() -> None:
    client = Client(1, b"127.0.0.1", 0.0)
    assert {name: getattr(client, name) for name in DEFAULTS} == DEFAULTS
    assert client._rare is None
    client.password = b""  # setting a default makes nothing
    assert client._rare is None


@pytest.mark.parametrize("name", sorted(CHANGED))
def test_a_change_is_kept_and_the_others_stay_as_they_start(name: str) -> None:
    client = Client(1, b"127.0.0.1", 0.0)
    setattr(client, name, CHANGED[name])
    assert client._rare is not None
    assert getattr(client, name) == CHANGED[name]
    others = {other: getattr(client, other) for other in DEFAULTS if other != name}
    assert others == {other: value for other, value in DEFAULTS.items() if other != name}
    setattr(client, name, DEFAULTS[name])
    assert getattr(client, name) == DEFAULTS[name]
    other = Client(2, b"127.0.0.1", 0.0)
    assert getattr(other, name) == DEFAULTS[name]  # held per client, not on the class
