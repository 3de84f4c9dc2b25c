"""The client session layer, transcript style: server lines in, IRC lines and events out.

No sockets, no curses, no clock: the time is a number the test passes.
"""

from __future__ import annotations

import pytest

from fastchat.client.session import (
    KEEPALIVE_IDLE,
    KEEPALIVE_TIMEOUT,
    ConnState,
    Effects,
    Kind,
    Session,
    WindowKind,
    describe,
)
from fastchat.irc.message import MAX_LINE, parse

NOW = 1_700_000_000.0
SRV = b":irc.test "


def sent(fx: Effects) -> list[bytes]:
    """The lines to send, without CR LF (all must end in CR LF)."""
    assert all(x.endswith(b"\r\n") for x in fx.send)
    return [x[:-2] for x in fx.send]


def feed(s: Session, *lines: bytes) -> Effects:
    """Feed server lines; return the merged effects."""
    total = Effects()
    for one in lines:
        fx = s.receive(one, NOW)
        total.send += fx.send
        total.events += fx.events
        total.quit |= fx.quit
        total.disconnect |= fx.disconnect
    return total


def texts(fx: Effects) -> list[str]:
    return [describe(e) for e in fx.events]


def welcome(s: Session, nick: bytes = b"ada") -> Effects:
    return feed(
        s, SRV + b"001 " + nick + b" :Welcome to IRC " + nick, SRV + b"376 " + nick + b" :End"
    )


@pytest.fixture
def ada() -> Session:
    """Registered as ada and joined to #lobby."""
    s = Session("ada", "irc.test", channels=["#lobby"])
    s.connecting(NOW, "irc.test:6667")
    s.connected(NOW)
    welcome(s)
    feed(
        s,
        b":ada!u@h JOIN #lobby",
        SRV + b"353 ada = #lobby :ada @bob carol",
        SRV + b"366 ada #lobby :End of /NAMES list.",
    )
    return s


def test_registration_sends_pass_nick_user() -> None:
    """RFC 2812 §3.1: "The recommended order for a client to register is as follows: 1. Pass
    message 2. Nick message 3. User message"; IRCv3 capability negotiation: "Clients SHOULD
    send CAP LS ... before NICK/USER" (with 302, for cap-notify and multi-line replies)."""
    s = Session("ada", "irc.test", password="sekrit")
    assert s.connecting(NOW, "x").events[0].kind is Kind.INFO
    assert s.state is ConnState.CONNECTING
    assert sent(s.connected(NOW)) == [
        b"CAP LS 302",
        b"PASS sekrit",
        b"NICK ada",
        b"USER fastchat 0 * :fastchat client",
    ]
    assert s.state.name == "REGISTERING"  # (mypy would narrow the enum)


def test_no_pass_without_password() -> None:
    s = Session("ada", "irc.test")
    assert [parse(x).command for x in sent(s.connected(NOW))] == [b"CAP", b"NICK", b"USER"]


def test_nick_in_use_during_registration_appends_underscore() -> None:
    """ERR_NICKNAMEINUSE (433) before RPL_WELCOME: try another nick, with ``_`` appended."""
    s = Session("ada", "irc.test")
    s.connected(NOW)
    assert sent(feed(s, SRV + b"433 * ada :Nickname is already in use")) == [b"NICK ada_"]
    assert sent(feed(s, SRV + b"433 * ada_ :Nickname is already in use")) == [b"NICK ada__"]
    welcome(s, b"ada__")
    assert s.nick == b"ada__"
    assert s.registered


def test_nick_in_use_after_registration_is_just_an_error(ada: Session) -> None:
    fx = feed(ada, SRV + b"433 ada bob :Nickname is already in use")
    assert fx.send == []
    assert fx.events[0].kind is Kind.ERROR
    assert ada.nick == b"ada"


def test_ping_is_answered_with_pong() -> None:
    """RFC 2812 §3.7.2: PING must be answered with PONG carrying the same token, even
    before registration."""
    s = Session("ada", "irc.test")
    s.connected(NOW)
    assert sent(feed(s, b"PING :tok 123")) == [b"PONG :tok 123"]
    assert sent(feed(s, b":irc.test PING irc.test")) == [b"PONG irc.test"]


def test_joins_channels_at_end_of_motd_and_focuses_them() -> None:
    s = Session("ada", "irc.test", channels=["#dev"])
    s.connected(NOW)
    fx = welcome(s)
    assert sent(fx) == [b"JOIN #dev"]
    assert s.state is ConnState.CONNECTED and not s.ready
    feed(s, b":ada!u@h JOIN #dev")
    assert s.window.name == b"#dev" and s.window.joined
    assert s.ready


def test_no_motd_also_triggers_join() -> None:
    s = Session("ada", "irc.test", channels=["#dev"])
    s.connected(NOW)
    fx = feed(s, SRV + b"001 ada :hi", SRV + b"422 ada :MOTD File is missing")
    assert sent(fx) == [b"JOIN #dev"]


def test_server_autojoin_is_not_joined_twice() -> None:
    """fastchat auto-joins #lobby itself; the client must not JOIN it again."""
    s = Session("ada", "irc.test", channels=["#lobby"])
    s.connected(NOW)
    fx = feed(s, SRV + b"001 ada :hi", b":ada!u@h JOIN #lobby", SRV + b"376 ada :End")
    assert sent(fx) == []
    assert s.window.name == b"#lobby"
    assert s.ready


def test_server_autojoin_opens_window_but_focus_follows_request() -> None:
    s = Session("ada", "irc.test", channels=["#dev"])
    s.connected(NOW)
    feed(s, SRV + b"001 ada :hi", b":ada!u@h JOIN #lobby", SRV + b"376 ada :End")
    assert s.window.name == b"#lobby"  # focused from the server window
    feed(s, b":ada!u@h JOIN #dev")
    assert s.window.name == b"#dev"
    assert [w.title for w in s.windows] == ["", "#lobby", "#dev"]


def test_refused_join_does_not_block_ready() -> None:
    s = Session("ada", "irc.test", channels=["#secret"])
    s.connected(NOW)
    welcome(s)
    feed(s, SRV + b"473 ada #secret :Cannot join channel (+i)")
    assert s.ready


def test_plain_text_goes_to_current_channel_and_is_echoed(ada: Session) -> None:
    fx = ada.command("hello, wörld", NOW)
    assert sent(fx) == ["PRIVMSG #lobby :hello, wörld".encode()]
    (event,) = fx.events
    assert (event.kind, event.nick, event.text, event.own) == (
        Kind.MESSAGE,
        "ada",
        "hello, wörld",
        True,
    )
    assert ada.window.lines[-1] == event


def test_double_slash_sends_a_literal_slash(ada: Session) -> None:
    assert parse(sent(ada.command("//shrug", NOW))[0]).params == (b"#lobby", b"/shrug")


def test_text_in_server_window_is_refused() -> None:
    s = Session("ada", "irc.test")
    s.connected(NOW)
    welcome(s)
    fx = s.command("hello", NOW)
    assert fx.send == [] and fx.events[0].kind is Kind.ERROR


def test_long_text_is_split_into_lines_that_fit(ada: Session) -> None:
    """RFC 1459 §2.3: a message is at most 512 bytes with CR LF, including the source the
    server prepends when relaying; cut on UTF-8 boundaries."""
    body = "é" * 700
    fx = ada.command(body, NOW)
    assert len(fx.send) > 1
    assert all(len(x) + 100 <= MAX_LINE for x in fx.send)
    assert "".join(parse(x).params[1].decode() for x in sent(fx)) == body


def test_channel_message_from_others(ada: Session) -> None:
    fx = feed(ada, b":bob!b@h PRIVMSG #lobby :hi \x02there\x02 ada")
    (event,) = fx.events
    assert describe(event) == "<bob> hi there ada"
    assert event.highlight  # mentions our nick


def test_private_message_opens_query_and_marks_activity(ada: Session) -> None:
    feed(ada, b":bob!b@h PRIVMSG ada :psst")
    q = ada.find(b"BOB")
    assert q is not None and q.kind is WindowKind.QUERY
    assert ada.window.name == b"#lobby"  # focus stays
    assert q.unread == 1
    assert "act: 3!" in ada.status()
    ada.command("/win 3", NOW)
    assert ada.window is q and q.unread == 0
    assert sent(ada.command("hi bob", NOW)) == [b"PRIVMSG bob :hi bob"]


def test_msg_command_opens_query_and_sends(ada: Session) -> None:
    fx = ada.command("/msg carol secret plan", NOW)
    assert sent(fx) == [b"PRIVMSG carol :secret plan"]
    assert ada.window.name == b"carol" and ada.window.kind is WindowKind.QUERY
    assert describe(fx.events[-1]) == "<ada> secret plan"


def test_msg_to_a_channel_does_not_open_query(ada: Session) -> None:
    fx = ada.command("/msg #other hello there", NOW)
    assert sent(fx) == [b"PRIVMSG #other :hello there"]
    assert ada.find(b"#other") is None
    assert describe(fx.events[-1]) == "--- -> #other: hello there"


def test_me_sends_ctcp_action(ada: Session) -> None:
    fx = ada.command("/me waves", NOW)
    assert sent(fx) == [b"PRIVMSG #lobby :\x01ACTION waves\x01"]
    assert describe(fx.events[0]) == "* ada waves"
    fx = feed(ada, b":bob!b@h PRIVMSG #lobby :\x01ACTION waves back\x01")
    assert describe(fx.events[0]) == "* bob waves back"


def test_ctcp_version_is_answered(ada: Session) -> None:
    fx = feed(ada, b":bob!b@h PRIVMSG ada :\x01VERSION\x01")
    assert sent(fx) == [b"NOTICE bob :\x01VERSION fastchat\x01"]


def test_join_part_quit_nick_events_and_members(ada: Session) -> None:
    lobby = ada.window
    assert set(lobby.members) == {b"ada", b"bob", b"carol"}
    fx = feed(
        ada,
        b":dave!d@h JOIN #lobby",
        b":dave!d@h NICK :dave2",
        b":carol!c@h PART #lobby :bye",
        b":bob!b@h QUIT :Ping timeout",
    )
    assert texts(fx) == [
        "--> dave has joined #lobby",
        "--- dave is now known as dave2",
        "<-- carol has left #lobby (bye)",
        "<-- bob has quit (Ping timeout)",
    ]
    assert set(lobby.members) == {b"ada", b"dave2"}


def test_quit_of_someone_not_in_a_window_shows_nothing(ada: Session) -> None:
    assert feed(ada, b":zed!z@h QUIT :bye").events == []


def test_nick_change_renames_query(ada: Session) -> None:
    feed(ada, b":bob!b@h PRIVMSG ada :hi")
    feed(ada, b":bob!b@h NICK robert")
    assert ada.find(b"robert") is not None and ada.find(b"bob") is None


def test_own_nick_change(ada: Session) -> None:
    assert sent(ada.command("/nick ada2", NOW)) == [b"NICK ada2"]
    assert ada.nick == b"ada"  # only when the server says so
    fx = feed(ada, b":ada!u@h NICK :ada2")
    assert ada.nick == b"ada2"
    assert "You are now known as ada2" in texts(fx)[0]


def test_part_closes_the_window(ada: Session) -> None:
    assert sent(ada.command("/part", NOW)) == [b"PART #lobby"]
    feed(ada, b":ada!u@h PART #lobby")
    assert ada.find(b"#lobby") is None and ada.current == 0


def test_part_in_a_query_closes_it_locally(ada: Session) -> None:
    ada.command("/query bob", NOW)
    assert ada.window.name == b"bob"
    assert ada.command("/part", NOW).send == []
    assert ada.find(b"bob") is None


def test_join_command(ada: Session) -> None:
    assert sent(ada.command("/join dev", NOW)) == [b"JOIN #dev"]
    assert sent(ada.command("/join #a,#b key", NOW)) == [b"JOIN #a,#b key"]
    feed(ada, b":ada!u@h JOIN #dev")
    assert ada.window.name == b"#dev"


def test_names_topic_away(ada: Session) -> None:
    assert sent(ada.command("/names", NOW)) == [b"NAMES #lobby"]
    assert sent(ada.command("/topic", NOW)) == [b"TOPIC #lobby"]
    assert sent(ada.command("/topic new topic", NOW)) == [b"TOPIC #lobby :new topic"]
    assert sent(ada.command("/away lunch", NOW)) == [b"AWAY lunch"]
    feed(ada, SRV + b"306 ada :You have been marked as being away")
    assert ada.away and "(away)" in ada.status()
    assert sent(ada.command("/away", NOW)) == [b"AWAY"]
    feed(ada, SRV + b"305 ada :You are no longer marked as being away")
    assert not ada.away


def test_topic_replies(ada: Session) -> None:
    fx = feed(ada, SRV + b"332 ada #lobby :Welcome all", b":bob!b@h TOPIC #lobby :new one")
    assert texts(fx) == [
        "--- Topic for #lobby: Welcome all",
        "--- bob changed the topic to: new one",
    ]
    assert ada.window.topic == "new one"


def test_names_reply_lists_users(ada: Session) -> None:
    fx = feed(ada, SRV + b"353 ada = #lobby :ada @bob", SRV + b"366 ada #lobby :End")
    assert texts(fx) == ["--- Users on #lobby (2): @bob ada"]  # ops first, as nick lists do
    assert set(ada.window.members) == {b"ada", b"bob"}


def test_quit_command() -> None:
    s = Session("ada", "irc.test")
    s.connected(NOW)
    fx = s.command("/quit see you", NOW)
    assert sent(fx) == [b"QUIT :see you"] and fx.quit
    s2 = Session("ada", "irc.test")  # never connected: quit without a line
    fx2 = s2.command("/quit", NOW)
    assert fx2.quit and fx2.send == []


def test_help_and_unknown(ada: Session) -> None:
    assert any("/join" in t for t in texts(ada.command("/help", NOW)))
    assert ada.command("/frobnicate", NOW).events[0].kind is Kind.ERROR


def test_window_switching(ada: Session) -> None:
    ada.command("/query bob", NOW)
    assert ada.current == 2
    ada.command("/win next", NOW)
    assert ada.current == 0
    ada.command("/win prev", NOW)
    assert ada.current == 2
    ada.command("/win 2", NOW)
    assert ada.window.name == b"#lobby"
    assert ada.command("/win 9", NOW).events[0].kind is Kind.ERROR


def test_commands_need_a_connection() -> None:
    s = Session("ada", "irc.test")
    for cmd in ("/join #x", "/names #x", "/away", "/msg bob hi"):
        fx = s.command(cmd, NOW)
        assert fx.send == [] and fx.events[0].kind is Kind.ERROR, cmd


def test_lost_and_reconnect_rejoins_channels(ada: Session) -> None:
    feed(ada, b":ada!u@h JOIN #dev")
    ada.command("/win 3", NOW)
    fx = ada.lost(NOW, "connection reset", 2.0)
    assert ada.state is ConnState.LOST and not ada.registered
    assert any("Connection lost" in t for t in texts(fx))
    assert "retrying in 2s" in ada.status()
    assert all(not w.joined for w in ada.windows)
    ada.connecting(NOW, "x")
    assert sent(ada.connected(NOW)) == [
        b"CAP LS 302",
        b"NICK ada",
        b"USER fastchat 0 * :fastchat client",
    ]
    assert sent(welcome(ada)) == [b"JOIN #lobby,#dev"]
    feed(ada, b":ada!u@h JOIN #lobby", b":ada!u@h JOIN #dev")
    assert ada.window.name == b"#dev"  # focus kept, scrollback kept
    assert len(ada.windows) == 3 and all(w.joined for w in ada.windows[1:])


def test_lost_before_registration_keeps_requested_channels() -> None:
    s = Session("ada", "irc.test", channels=["#dev"])
    s.connected(NOW)
    s.lost(NOW, "refused", 1.0)
    s.connected(NOW)
    assert sent(welcome(s)) == [b"JOIN #dev"]


def test_keepalive_pings_idle_server_then_gives_up(ada: Session) -> None:
    assert ada.tick(NOW + 1).send == []
    assert sent(ada.tick(NOW + KEEPALIVE_IDLE + 1)) == [b"PING fastchat-keepalive"]
    assert not ada.tick(NOW + KEEPALIVE_IDLE + 2).disconnect
    assert ada.tick(NOW + KEEPALIVE_IDLE + KEEPALIVE_TIMEOUT + 2).disconnect


def test_keepalive_reply_resets(ada: Session) -> None:
    ada.tick(NOW + KEEPALIVE_IDLE + 1)
    ada.receive(b":irc.test PONG irc.test :fastchat-keepalive", NOW + KEEPALIVE_IDLE + 2)
    assert not ada.tick(NOW + KEEPALIVE_IDLE + KEEPALIVE_TIMEOUT + 3).disconnect


def test_hostile_text_cannot_reach_the_terminal(ada: Session) -> None:
    fx = feed(ada, b":bob!b@h PRIVMSG #lobby :\x1b]0;pwned\x07\x1b[2J")
    assert "\x1b" not in fx.events[0].text and "\x07" not in fx.events[0].text


def test_latin1_fallback(ada: Session) -> None:
    fx = feed(ada, b":bob!b@h PRIVMSG #lobby :caf\xe9")
    assert fx.events[0].text == "café"


def test_garbage_line_is_reported_not_raised(ada: Session) -> None:
    fx = feed(ada, b":onlysource")
    assert fx.events[0].kind is Kind.ERROR


def test_unknown_numerics_go_to_server_window(ada: Session) -> None:
    fx = feed(ada, SRV + b"251 ada :There are 3 users")
    assert fx.events[0].window == "" and ada.windows[0].lines[-1].text == "There are 3 users"


def test_error_numerics_go_to_current_window(ada: Session) -> None:
    fx = feed(ada, SRV + b"401 ada zed :No such nick/channel")
    assert describe(fx.events[0]) == "!!! zed: No such nick/channel"
    assert fx.events[0].window == "#lobby"


def test_scrolled_window_stays_still(ada: Session) -> None:
    ada.window.scroll = 5
    feed(ada, b":bob!b@h PRIVMSG #lobby :one")
    assert ada.window.scroll == 6


def test_quote_sends_raw_lines(ada: Session) -> None:
    assert sent(ada.command("/quote WHOIS bob", NOW)) == [b"WHOIS bob"]
    assert ada.command("/quote :", NOW).send == []


def test_completions(ada: Session) -> None:
    assert {"bob", "carol", "#lobby", "/join"} <= set(ada.completions())


def test_failed_retries_are_reported_only_in_the_server_window(ada: Session) -> None:
    first = ada.lost(NOW, "reset", 1.0)
    assert {e.window for e in first.events} == {"", "#lobby"}
    ada.connecting(NOW, "x")
    again = ada.lost(NOW, "refused", 2.0)
    assert {e.window for e in again.events} == {""}


def test_erroneous_nick_during_registration_falls_back_to_guest() -> None:
    s = Session("9bad", "irc.test")
    s.connected(NOW)
    assert sent(feed(s, SRV + b"432 * 9bad :Erroneous nickname")) == [b"NICK guest"]
    assert sent(feed(s, SRV + b"433 * guest :Nickname is already in use")) == [b"NICK guest_"]


def test_lost_between_welcome_and_motd_end_keeps_requested_channels() -> None:
    s = Session("ada", "irc.test", channels=["#dev"])
    s.connected(NOW)
    feed(s, SRV + b"001 ada :hi")
    s.lost(NOW, "reset", 1.0)
    s.connected(NOW)
    assert sent(welcome(s)) == [b"JOIN #dev"]


def test_wrong_password_gives_up_instead_of_reconnecting() -> None:
    s = Session("ada", "irc.test", password="wrong")
    s.connected(NOW)
    fx = feed(s, SRV + b"464 * :Password incorrect")
    assert fx.quit
    assert s.fatal is not None and "password" in s.fatal
