"""Unit tests for the record vocabulary between workers, hub and sequencer
(``fastchat.server.network.records``).

What the module promises: every kind has one code and one schema (a NamedTuple whose layout
*is* the wire layout), ``make`` builds the wire form (a plain tuple, which ``marshal`` takes),
``schema._make`` reads it back by name, and everything the sequencer produces carries the
millisecond ``time`` of its decision as its last field.
"""

from __future__ import annotations

import marshal
import subprocess
import sys
from typing import Any, ForwardRef

import pytest

from fastchat.server.network import records
from fastchat.server.network.records import SCHEMAS, STATE_EVENTS, make

# -- the catalogue ---------------------------------------------------------------------------------

#: Every kind constant the module declares, by name (R_*, E_*, D_*, B_*).
KIND_CONSTANTS: dict[str, int] = {
    name: value
    for name, value in vars(records).items()
    if name[:2] in ("R_", "E_", "D_", "B_") and isinstance(value, int)
}

#: A sample value for each annotation a schema uses. A schema with a new field type fails
#: ``test_every_field_type_has_a_sample`` until a sample is added here.
SAMPLES: dict[str, Any] = {
    "int": 1234567,
    "bytes": b"#Chan[x]\xff",
    "bool": True,
    "tuple[bytes, ...]": (b"alice", b"*!*@host"),
    "tuple[str, ...]": ("kill", "see"),  # operator privileges, named as in the config
    "tuple[int, ...]": (1, 1 << 33),
    "tuple[tuple[int, int], ...]": ((0, 5), (2, 7)),
    "dict[int, int]": {0: 3, 1: 4},
    "dict[bytes, int]": {b"PRIVMSG": 3, b"JOIN": 1 << 40},
    "dict[int, int] | None": {2: 9},
    "bytes | None": b"value",
    "Any": ((b"nested", 1), ()),
}


def _annotations(schema: type[Any]) -> dict[str, str]:
    """Each field's annotation as written (NamedTuple keeps postponed ones as ForwardRef)."""
    return {
        name: a.__forward_arg__ if isinstance(a, ForwardRef) else a
        for name, a in schema.__annotations__.items()
    }


def _sample_fields(schema: type[Any]) -> dict[str, Any]:
    """A value for every field but ``kind``, each one distinct so a swapped field shows."""
    fields: dict[str, Any] = {}
    for i, (name, annotation) in enumerate(_annotations(schema).items()):
        if name == "kind":
            continue
        value = SAMPLES[annotation]
        if annotation == "int":
            value += i  # distinct ints: a swap of two int fields must not go unnoticed
        fields[name] = value
    return fields


def _name_of(schema: type[Any]) -> str:
    """The constant a schema belongs to by our naming: ``RChanMsg`` -> ``R_CHANMSG``."""
    return schema.__name__[0] + "_" + schema.__name__[1:].upper()


SCHEMA_PARAMS = [pytest.param(code, schema, id=schema.__name__) for code, schema in SCHEMAS.items()]


# -- codes -----------------------------------------------------------------------------------------


def test_every_kind_code_is_distinct() -> None:
    """Records are told apart by their first element alone, so no two kinds (requests,
    events, deliveries, bus control) may share a code."""
    values = list(KIND_CONSTANTS.values())
    assert len(values) == len(set(values)), KIND_CONSTANTS


def test_every_kind_has_exactly_one_schema() -> None:
    """records.py, "every kind's schema": each declared kind appears in SCHEMAS once,
    SCHEMAS holds nothing else, and no schema serves two kinds."""
    assert sorted(SCHEMAS) == sorted(KIND_CONSTANTS.values())
    schemas = list(SCHEMAS.values())
    assert len(schemas) == len(set(schemas))


@pytest.mark.parametrize(("code", "schema"), SCHEMA_PARAMS)
def test_schema_is_named_after_its_kind(code: int, schema: type[Any]) -> None:
    """The schema of ``R_CHANMSG`` is ``RChanMsg``: a reader finds one from the other."""
    assert KIND_CONSTANTS[_name_of(schema)] == code


@pytest.mark.parametrize(("code", "schema"), SCHEMA_PARAMS)
def test_first_field_is_kind(code: int, schema: type[Any]) -> None:
    """records.py: "a record is a plain tuple ``(kind, *fields)``", so the schema's first
    field is ``kind``."""
    assert schema._fields[0] == "kind"


@pytest.mark.parametrize(("code", "schema"), SCHEMA_PARAMS)
def test_every_field_type_has_a_sample(code: int, schema: type[Any]) -> None:
    """Keeps this module's samples complete: a record must hold only what marshal takes
    (ints, bytes, str, bools, tuples, dicts, None), and each field type here is one of those."""
    unknown = set(_annotations(schema).values()) - set(SAMPLES)
    assert not unknown


# -- make and _make --------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "schema"), SCHEMA_PARAMS)
def test_make_builds_a_plain_tuple_with_the_code_first(code: int, schema: type[Any]) -> None:
    """``make`` gives the wire form: exactly a ``tuple`` (marshal refuses tuple subclasses,
    NamedTuples included) of the schema's length, whose [0] is the kind's code."""
    record = make(schema, **_sample_fields(schema))
    assert type(record) is tuple
    assert len(record) == len(schema._fields)
    assert record[0] == code


@pytest.mark.parametrize(("code", "schema"), SCHEMA_PARAMS)
def test_record_survives_marshal_and_reads_back_by_name(code: int, schema: type[Any]) -> None:
    """records.py: "a whole batch crosses the bus as one marshal frame", and
    ``schema._make(record)`` reads it back with names: every field comes back as given."""
    fields = _sample_fields(schema)
    record = make(schema, **fields)
    wire = marshal.loads(marshal.dumps([record]))
    assert wire == [record]
    assert type(wire[0]) is tuple
    named = schema._make(wire[0])
    assert named.kind == code
    for name, value in fields.items():
        assert getattr(named, name) == value, name


@pytest.mark.parametrize(("code", "schema"), SCHEMA_PARAMS)
def test_make_positional_equals_make_by_name(code: int, schema: type[Any]) -> None:
    """``make(ENick, uid, b"new", time=now)``: positional and keyword fields build the same
    record."""
    fields = _sample_fields(schema)
    assert make(schema, *fields.values()) == make(schema, **fields)


def test_marshal_refuses_a_namedtuple() -> None:
    """Why ``make`` must return a plain tuple: marshal cannot write a tuple subclass, so a
    schema instance that leaked onto the bus would fail there, not here."""
    named = records.ENick(records.E_NICK, 1, b"x", 0)
    with pytest.raises(ValueError):
        marshal.dumps([named])


def test_make_with_a_missing_field_raises() -> None:
    """A record is built whole: leaving out a field (here ``time``) is a programming error."""
    with pytest.raises(TypeError):
        make(records.ENick, 1, b"new")


def test_hand_built_hot_records_match_their_schemas() -> None:
    """The hot builders write D_CHAN, D_DONE and R_CHANMSG by hand (records.py says so); the
    layouts they use must be the schemas' layouts."""
    line = b":a!b@c PRIVMSG #chan :hi\r\n"
    d_chan = (records.D_CHAN, b"#chan", 7, line, 3, b"", 0, 1_700_000_000_123)
    assert records.DChan._make(d_chan) == make(
        records.DChan, b"#chan", 7, line, 3, b"", 0, 1_700_000_000_123
    )
    assert records.DDone._make((records.D_DONE, 7, 5)).time == 5
    r_chanmsg = (records.R_CHANMSG, 7, b"#chan", b"line", False, True, 3, b"", 0)
    assert records.RChanMsg._make(r_chanmsg).doubted is True


# -- time stamps and state events ------------------------------------------------------------------

DECIDED = [
    pytest.param(code, schema, id=schema.__name__)
    for code, schema in SCHEMAS.items()
    if _name_of(schema)[:2] in ("E_", "D_")
]


@pytest.mark.parametrize(("code", "schema"), DECIDED)
def test_every_event_and_delivery_ends_with_time(code: int, schema: type[Any]) -> None:
    """records.py: "Every record the sequencer produces carries ``time``: the millisecond
    (Unix time) at which it decided", so the last field of every E_* and D_* schema is
    ``time``."""
    assert schema._fields[-1] == "time"
    assert _annotations(schema)["time"] == "int"


def test_state_events_are_exactly_the_events() -> None:
    """STATE_EVENTS ("events that change state: every worker and the hub apply them") is
    exactly the set of E_* codes: a new event kind that is not applied would silently
    desynchronise the replicas."""
    events = {value for name, value in KIND_CONSTANTS.items() if name.startswith("E_")}
    assert frozenset(events) == STATE_EVENTS


def test_member_flags_are_distinct_bits() -> None:
    """OP and VOICE are flags of one int (Modern IRC "Channel membership" prefixes): each is
    a single distinct bit."""
    assert records.OP & records.VOICE == 0
    for flag in (records.OP, records.VOICE):
        assert flag and flag & (flag - 1) == 0


# -- purity ----------------------------------------------------------------------------------------

IO_MODULES = ("socket", "selectors", "select", "ssl", "sqlite3", "subprocess", "threading")


@pytest.mark.parametrize(
    "module",
    [
        "fastchat.server.network.records",
        "fastchat.server.network.state",
        "fastchat.server.network.sequencer",
    ],
)
def test_network_core_imports_no_io(module: str) -> None:
    """STYLE.md, "Pure core, thin shell": the network core "must never touch sockets or the
    clock". Imported alone in a fresh interpreter, it pulls in no I/O module, and names no
    ``time`` module of its own (``time`` itself is loaded by every interpreter at start-up)."""
    code = (
        "import sys, importlib\n"
        "before = set(sys.modules)\n"
        f"m = importlib.import_module({module!r})\n"
        f"print(sorted(set(sys.modules) - before & set({IO_MODULES!r})))\n"
        "print('time' in vars(m))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[0] == "[]"
    assert out[1] == "False"
