"""The client's IRCv3 side, transcript style: CAP negotiation (with servers that have CAP and
servers that do not), tags on every line, and what server-time, echo-message, multi-prefix and
away-notify change on the screen. No sockets, no curses, no clock.
"""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastchat.client.capabilities import CAP_TIMEOUT, WANTED, CapPhase, maybe_server_time
from fastchat.client.session import Kind, Session, WindowKind, describe
from fastchat.irc.message import parse
from tests.client.test_session import NOW, SRV, feed, sent, texts, welcome

#: What fastchat offers (CAP LS 302), over two lines as a long list would be.
LS_FIRST = SRV + b"CAP * LS * :cap-notify echo-message multi-prefix sasl=PLAIN,EXTERNAL"
LS_LAST = SRV + b"CAP * LS :server-time userhost-in-names draft/example=1"


def connect(nick: str = "ada", channels: tuple[str, ...] = ("#lobby",)) -> Session:
    s = Session(nick, "irc.test", channels=channels)
    s.connecting(NOW, "irc.test:6667")
    assert sent(s.connected(NOW))[0] == b"CAP LS 302"
    return s


def negotiated(*caps: bytes) -> Session:
    """Registered as ada in #lobby (with bob and carol) after the server ACKed ``caps``."""
    s = connect()
    offered = b" ".join(caps)
    fx = feed(s, SRV + b"CAP * LS :" + offered)
    if caps:
        (req,) = sent(fx)
        assert parse(req).params == (b"REQ", b" ".join(c for c in WANTED if c in caps))
        fx = feed(s, SRV + b"CAP ada ACK :" + offered)
    assert sent(fx) == [b"CAP END"]
    welcome(s)
    feed(
        s,
        b":ada!u@h JOIN #lobby",
        SRV + b"353 ada = #lobby :ada @bob carol",
        SRV + b"366 ada #lobby :End of /NAMES list.",
    )
    assert s.ready
    return s


# -- negotiation --------------------------------------------------------------------------------


def test_requests_what_it_uses_among_what_is_offered_then_ends() -> None:
    """IRCv3 Capability Negotiation: "If the client supports [LS 302] ... the server MAY send
    [the list] over multiple lines", each but the last with ``*``; the client then "MUST
    send CAP END" once its requests are answered, which ends the registration hold."""
    s = connect()
    assert sent(feed(s, LS_FIRST)) == []  # more to come
    assert s.caps.phase is CapPhase.LISTING
    fx = feed(s, LS_LAST)
    assert sent(fx) == [b"CAP REQ :server-time echo-message multi-prefix"]
    assert s.caps.offered[b"sasl"] == b"PLAIN,EXTERNAL"
    assert s.caps.offered[b"draft/example"] == b"1"
    assert s.caps.negotiating and not s.caps.enabled
    fx = feed(s, SRV + b"CAP ada ACK :server-time echo-message multi-prefix")
    assert sent(fx) == [b"CAP END"]
    assert s.caps.enabled == {b"server-time", b"echo-message", b"multi-prefix"}
    assert "Capabilities enabled: server-time echo-message multi-prefix" in texts(fx)[0]
    assert not s.caps.negotiating
    welcome(s)
    assert s.registered


def test_away_notify_and_message_tags_only_when_offered() -> None:
    s = connect()
    fx = feed(s, SRV + b"CAP * LS :message-tags away-notify account-notify batch")
    assert sent(fx) == [b"CAP REQ :away-notify message-tags"]


def test_nothing_wanted_on_offer_ends_at_once() -> None:
    s = connect()
    assert sent(feed(s, SRV + b"CAP * LS :sasl account-notify")) == [b"CAP END"]
    assert sent(feed(s, SRV + b"CAP * LS :")) == []  # an empty list after the end: no 2nd END
    assert not s.caps.enabled


def test_nak_ends_without_them() -> None:
    """CAP REQ is all or nothing: "the server MUST NOT enable any capability" on NAK."""
    s = connect()
    feed(s, SRV + b"CAP * LS :server-time echo-message")
    fx = feed(s, SRV + b"CAP * NAK :server-time echo-message")
    assert sent(fx) == [b"CAP END"]
    assert not s.caps.enabled
    assert any("refused" in t for t in texts(fx))


def test_server_without_cap_answers_421_and_registers_us() -> None:
    """A pre-IRCv3 server: ERR_UNKNOWNCOMMAND for CAP, then the welcome on NICK and USER;
    no CAP END (it would only earn another 421), and no error shown for the CAP."""
    s = connect()
    fx = feed(s, SRV + b"421 * CAP :Unknown command")
    assert sent(fx) == []
    assert [e.kind for e in fx.events] == [Kind.INFO]
    assert "does not support capabilities" in texts(fx)[0]
    assert s.caps.phase is CapPhase.DONE
    assert sent(welcome(s)) == [b"JOIN #lobby"]
    assert s.tick(NOW + CAP_TIMEOUT + 1).send == []


def test_server_without_cap_answers_451() -> None:
    """Some servers answer any command before registration with ERR_NOTREGISTERED."""
    s = connect()
    assert sent(feed(s, SRV + b"451 * CAP :You have not registered")) == []
    assert s.caps.phase is CapPhase.DONE


def test_server_that_ignores_cap_registers_us() -> None:
    s = connect()
    assert sent(welcome(s)) == [b"JOIN #lobby"]
    assert s.caps.phase is CapPhase.DONE and not s.caps.enabled
    assert s.tick(NOW + CAP_TIMEOUT + 1).send == []


def test_no_answer_at_all_ends_negotiation_after_a_timeout() -> None:
    s = connect()
    assert s.tick(NOW + CAP_TIMEOUT - 1).send == []
    fx = s.tick(NOW + CAP_TIMEOUT + 1)
    assert sent(fx) == [b"CAP END"]
    assert s.caps.phase is CapPhase.DONE
    assert s.tick(NOW + 2 * CAP_TIMEOUT).send == []


def test_no_answer_to_req_ends_too() -> None:
    s = connect()
    feed(s, SRV + b"CAP * LS :server-time")
    assert sent(s.tick(NOW + CAP_TIMEOUT + 1)) == [b"CAP END"]


def test_421_for_another_command_is_still_an_error() -> None:
    s = negotiated()
    fx = feed(s, SRV + b"421 ada FROB :Unknown command")
    assert fx.events[0].kind is Kind.ERROR


def test_new_and_del_after_registration() -> None:
    """cap-notify (implied by LS 302): CAP NEW offers more, to be requested without an END;
    CAP DEL withdraws one."""
    s = negotiated(b"server-time")
    fx = feed(s, SRV + b"CAP ada NEW :away-notify chghost")
    assert sent(fx) == [b"CAP REQ away-notify"]
    assert sent(feed(s, SRV + b"CAP ada ACK :away-notify")) == []
    assert s.caps.enabled == {b"server-time", b"away-notify"}
    fx = feed(s, SRV + b"CAP ada DEL :away-notify")
    assert s.caps.enabled == {b"server-time"}
    assert any("withdrawn" in t for t in texts(fx))
    assert sent(feed(s, SRV + b"CAP ada ACK :-server-time")) == []
    assert not s.caps.enabled


def test_reconnect_negotiates_again() -> None:
    s = negotiated(b"echo-message")
    s.lost(NOW, "reset", 1.0)
    s.connecting(NOW, "x")
    assert sent(s.connected(NOW))[0] == b"CAP LS 302"
    assert not s.caps.enabled  # the last connection's capabilities are gone
    assert sent(feed(s, SRV + b"421 * CAP :Unknown command")) == []


def test_cap_list_is_shown() -> None:
    s = negotiated(b"server-time")
    assert texts(feed(s, SRV + b"CAP ada LIST :server-time")) == [
        "--- Capabilities enabled: server-time"
    ]


# -- tags ---------------------------------------------------------------------------------------


def test_time_tag_dates_the_event() -> None:
    """IRCv3 server-time: ``@time=2011-10-19T16:40:51.620Z``, UTC with milliseconds."""
    s = negotiated(b"server-time")
    fx = feed(s, b"@time=2011-10-19T16:40:51.620Z :bob!b@h PRIVMSG #lobby :hi")
    (event,) = fx.events
    assert event.time == pytest.approx(1319042451.62)
    assert describe(event) == "<bob> hi"


def test_line_without_time_gets_the_local_clock() -> None:
    s = negotiated(b"server-time")
    assert feed(s, b":bob!b@h PRIVMSG #lobby :hi").events[0].time == NOW
    assert feed(s, b"@time=garbage :bob!b@h PRIVMSG #lobby :hi").events[0].time == NOW


@pytest.mark.parametrize(
    "tags",
    [
        b"msgid=abc123",
        b"+draft/react=\\:)\\s;example.com/vendor-tag",
        b"a;b=;c=\\",
        b"=novalue;bad_key!=1;+=x",
        b"time=2011-10-19T16:40:51.620Z;time=garbage",
        b"\xff\xfe=x",
    ],
)
def test_unknown_and_odd_tags_are_ignored(tags: bytes) -> None:
    """Message tags: clients "MUST ignore" tags they do not know; a line is never lost to
    its tags."""
    s = negotiated()
    fx = feed(s, b"@" + tags + b" :bob!b@h PRIVMSG #lobby :still here")
    assert texts(fx) == ["<bob> still here"]


def test_tags_on_numerics_and_pings_too() -> None:
    s = connect()
    assert sent(feed(s, b"@label=x PING :tok")) == [b"PONG tok"]
    assert sent(feed(s, b"@msgid=1 " + SRV + b"CAP * LS :server-time")) == [b"CAP REQ server-time"]


def test_tagmsg_shows_nothing() -> None:
    s = negotiated(b"message-tags")
    assert feed(s, b"@+typing=active :bob!b@h TAGMSG #lobby").events == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"1970-01-01T00:00:00.000Z", 0.0),
        (b"2000-02-29T12:00:00.5Z", 951825600.5),
        (b"2024-12-31T23:59:59.999Z", 1735689599.999),
        (b"2011-10-19T18:40:51.620+02:00", 1319042451.62),
        (b"2011-10-19T16:40:51Z", 1319042451.0),
        (b"2011-13-19T16:40:51Z", None),
        (b"2011-10-19 16:40:51Z", None),
        (b"", None),
    ],
)
def test_server_time_values(value: bytes, expected: float | None) -> None:
    got = maybe_server_time(value)
    assert got == (pytest.approx(expected) if expected is not None else None)


@given(st.datetimes(min_value=datetime.datetime(1970, 1, 1), timezones=st.just(datetime.UTC)))
def test_server_time_agrees_with_datetime(when: datetime.datetime) -> None:
    """The hand-written parser (the session layer may not import the clock) agrees with
    ``datetime`` for every millisecond stamp a server could send."""
    when = when.replace(microsecond=when.microsecond // 1000 * 1000)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    assert maybe_server_time(stamp.encode()) == pytest.approx(when.timestamp(), abs=1e-6)


# -- echo-message -------------------------------------------------------------------------------


def test_echo_message_means_no_local_echo_and_the_servers_copy_once() -> None:
    """IRCv3 echo-message: the server sends the client its own messages back, so the client
    shows that copy (in the channel's order, with the server's time) instead of its own."""
    s = negotiated(b"echo-message", b"server-time")
    fx = s.command("hello all", NOW)
    assert sent(fx) == [b"PRIVMSG #lobby :hello all"]
    assert fx.events == []
    fx = feed(s, b"@time=2011-10-19T16:40:51.620Z :ada!u@h PRIVMSG #lobby :hello all")
    (event,) = fx.events
    assert (describe(event), event.own, event.highlight) == ("<ada> hello all", True, False)
    assert event.time == pytest.approx(1319042451.62)
    lobby = s.find(b"#lobby")
    assert lobby is not None
    assert [describe(e) for e in lobby.lines].count("<ada> hello all") == 1


def test_echoed_private_message_goes_to_the_query_of_its_target() -> None:
    s = negotiated(b"echo-message")
    fx = s.command("/msg bob psst", NOW)
    assert sent(fx) == [b"PRIVMSG bob psst"] and fx.events == []
    fx = feed(s, b":ada!u@h PRIVMSG bob :psst")
    assert [(e.window, describe(e)) for e in fx.events] == [("bob", "<ada> psst")]
    assert s.find(b"ada") is None  # not a query with ourselves
    bob = s.find(b"bob")
    assert bob is not None and bob.kind is WindowKind.QUERY


def test_echoed_action_and_message_to_a_channel_we_are_not_in() -> None:
    s = negotiated(b"echo-message")
    assert s.command("/me waves", NOW).events == []
    assert texts(feed(s, b":ada!u@h PRIVMSG #lobby :\x01ACTION waves\x01")) == ["* ada waves"]
    s.command("/msg #other hi there", NOW)
    assert texts(feed(s, b":ada!u@h PRIVMSG #other :hi there")) == ["--- -> #other: hi there"]


def test_echo_of_our_ctcp_reply_is_not_shown_or_answered() -> None:
    s = negotiated(b"echo-message")
    fx = feed(s, b":bob!b@h PRIVMSG ada :\x01VERSION\x01")
    assert sent(fx) == [b"NOTICE bob :\x01VERSION fastchat\x01"]
    fx = feed(s, b":ada!u@h NOTICE bob :\x01VERSION fastchat\x01")
    assert fx.events == [] and fx.send == []
    assert feed(s, b":ada!u@h PRIVMSG bob :\x01PING 1\x01").send == []


def test_without_echo_message_the_local_echo_stays() -> None:
    s = negotiated(b"server-time")
    fx = s.command("hello all", NOW)
    assert texts(fx) == ["<ada> hello all"]


# -- multi-prefix and NAMES ---------------------------------------------------------------------


def test_multi_prefix_names_and_mode_changes() -> None:
    """IRCv3 multi-prefix: NAMES lists every prefix, highest first, so a ``MODE -o`` leaves
    the voice known."""
    s = negotiated(b"multi-prefix")
    fx = feed(
        s,
        SRV + b"005 ada PREFIX=(ov)@+ CHANMODES=b,k,l,imnst :are supported by this server",
        SRV + b"353 ada = #lobby :ada @+bob +carol",
        SRV + b"366 ada #lobby :End of /NAMES list.",
    )
    assert texts(fx)[-1] == "--- Users on #lobby (3): @bob +carol ada"
    lobby = s.window
    assert set(lobby.members.values()) == {"ada", "bob", "carol"}  # completions: bare nicks
    assert lobby.prefixes == {b"bob": "@+", b"carol": "+"}
    feed(s, b":bob!b@h MODE #lobby -o+o bob ada")
    assert lobby.prefixes == {b"bob": "+", b"carol": "+", b"ada": "@"}
    feed(s, b":ada!u@h MODE #lobby +kv-v+b sekrit carol carol *!*@evil")
    assert lobby.prefixes == {b"bob": "+", b"ada": "@"}
    feed(s, b":bob!b@h NICK robert", b":ada!u@h MODE #lobby +l 10 -l")
    assert s.nicklist(lobby) == ["@ada", "+robert", "carol"]
    feed(s, b":robert!b@h PART #lobby")
    assert s.nicklist(lobby) == ["@ada", "carol"]


def test_prefixes_from_isupport_and_userhost_in_names() -> None:
    s = negotiated()
    feed(s, SRV + b"005 ada PREFIX=(qaohv)~&@%+ :are supported")
    fx = feed(
        s,
        SRV + b"353 ada = #lobby :~&dan!d@h %eve!e@h ada!u@h",
        SRV + b"366 ada #lobby :End",
    )
    assert texts(fx) == ["--- Users on #lobby (3): ~dan %eve ada"]
    assert s.window.prefixes == {b"dan": "~&", b"eve": "%"}


# -- away-notify --------------------------------------------------------------------------------


def test_away_notify_lines_are_shown_where_the_user_is() -> None:
    """IRCv3 away-notify: ``:nick!user@host AWAY :reason`` when someone sharing a channel goes
    away, and ``AWAY`` without a parameter when they come back."""
    s = negotiated(b"away-notify")
    feed(s, b":bob!b@h PRIVMSG ada :hi")  # a query with bob as well
    fx = feed(s, b":bob!b@h AWAY :lunch")
    assert [(e.window, describe(e)) for e in fx.events] == [
        ("#lobby", "* bob is away: lunch"),
        ("bob", "* bob is away: lunch"),
    ]
    assert fx.events[0].kind is Kind.AWAY
    assert texts(feed(s, b":carol!c@h AWAY")) == ["* carol is back"]
    assert feed(s, b":zed!z@h AWAY :gone").events == []  # shares nothing with us
    assert feed(s, b":ada!u@h AWAY :me").events == []
