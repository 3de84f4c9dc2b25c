"""PRIVMSG and NOTICE (RFC 2812 §3.3), AWAY (§4.1), PING/PONG (§3.7), NICK changes."""

from __future__ import annotations


def test_channel_message_reaches_others_not_sender(connect) -> None:
    """RFC 2812 §3.3.1: a channel message goes to every member except the sender."""
    a = connect("talker")
    b = connect("hearer")
    b.sync()
    a.send("PRIVMSG #lobby :hello there")
    b.expect(r"^:talker!~talker@\S+ PRIVMSG #lobby :hello there$")
    assert not any("hello there" in line for line in a.sync())


def test_private_message_and_several_targets(connect) -> None:
    """RFC 2812 §3.3.1 PRIVMSG <msgtarget>{,<msgtarget>}; 401 for a missing nick."""
    a = connect("pm1")
    b = connect("pm2")
    c = connect("pm3")
    a.send("PRIVMSG pm2,pm3 :psst")
    b.expect(r":pm1!\S+ PRIVMSG pm2 :psst$")
    c.expect(r":pm1!\S+ PRIVMSG pm3 :psst$")
    a.send("PRIVMSG ghost :anyone?")
    a.expect(r" 401 pm1 ghost :No such nick/channel")
    a.send("PRIVMSG #ghosts :anyone?")
    a.expect(r" 403 pm1 #ghosts ")


def test_message_errors(connect) -> None:
    """411 ERR_NORECIPIENT, 412 ERR_NOTEXTTOSEND, 407 ERR_TOOMANYTARGETS, 404 for +n."""
    a = connect("errs")
    a.send("PRIVMSG")
    a.expect(r" 411 errs ")
    a.send("PRIVMSG #lobby")
    a.expect(r" 412 errs ")
    a.send("PRIVMSG a,b,c,d,e :x")
    a.expect(r" 407 errs ")
    owner = connect("nowner")
    owner.send("JOIN #closed")
    owner.expect(r" 366 nowner #closed ")
    a.send("PRIVMSG #closed :let me in")
    a.expect(r" 404 errs #closed :Cannot send to channel")


def test_notice_never_answers_errors(connect) -> None:
    """RFC 2812 §3.3.2: "automatic replies MUST NEVER be sent in response to a NOTICE"."""
    a = connect("noticer")
    b = connect("noticed")
    a.send("NOTICE ghost :x")
    a.send("NOTICE #nochan :x")
    a.send("NOTICE noticed :hi")
    assert not any(" 401 " in line or " 403 " in line for line in a.sync())
    b.expect(r":noticer!\S+ NOTICE noticed :hi$")


def test_away(connect) -> None:
    """RFC 2812 §4.1: 306 when marked away, 305 when back, 301 to whoever messages you."""
    a = connect("awayer")
    b = connect("asker")
    a.send("AWAY :lunch")
    a.expect(r" 306 awayer ")
    b.send("PRIVMSG awayer :hi")
    b.expect(r" 301 asker awayer :lunch$")
    b.send("WHOIS awayer")
    b.expect(r" 301 asker awayer :lunch$")
    a.send("AWAY")
    a.expect(r" 305 awayer ")


def test_nick_change_seen_by_channel_members_once(connect) -> None:
    """RFC 2812 §3.1.2: the NICK change goes to the user and to everyone sharing a channel,
    once each, even when they share several channels."""
    a = connect("oldnick")
    b = connect("friend")
    for c in (a, b):
        c.send("JOIN #n1,#n2")
        c.expect(r" 366 \S+ #n2 ")
    b.sync()
    a.send("NICK newnick")
    a.expect(r"^:oldnick!\S+ NICK :newnick$")
    b.expect(r"^:oldnick!\S+ NICK :newnick$")
    assert not any("NICK" in line for line in b.sync())
    a.nick = "newnick"
    b.send("PRIVMSG newnick :found you")
    a.expect(r"PRIVMSG newnick :found you")
    c = connect("oldnick")  # the old nick is free again
    c.sync()


def test_ping_pong(connect) -> None:
    """RFC 2812 §3.7.2: PONG with the same token."""
    a = connect("pinger")
    a.send("PING :some token")
    a.expect(r"^:\S+ PONG \S+ :some token$")
    a.send("PING")
    a.expect(r" 461 pinger PING ")


def test_line_too_long(connect) -> None:
    """Modern IRC: ERR_INPUTTOOLONG (417) for a line over 512 bytes; the connection lives on."""
    a = connect("longer")
    a.send("PRIVMSG #lobby :" + "x" * 600)
    a.expect(r" 417 longer :Input line was too long")
    a.sync()


def _quiet_until(client, marker: str) -> list[str]:
    """Every line ``client`` receives before ``marker`` (a message the test sent last)."""
    return client.expect_until(marker)[:-1]


def test_tagged_line_obeys_512_bytes(connect) -> None:
    """IRCv3 message-tags, "Size limit": "The size limit for the rest of the message remains
    unchanged at 512 bytes" (417 ERR_INPUTTOOLONG, and nobody receives it); tag data over 4094
    bytes is 417 too. A tagged line within both limits is relayed, without its tags (no
    capability asks for them yet)."""
    a = connect("tagger")
    b = connect("tagseen")
    b.sync()
    a.send("@a=b PRIVMSG #lobby :" + "x" * 3000)
    a.expect(r"^:\S+ 417 tagger :Input line was too long$")
    a.send("@+k=" + "v" * 4092 + " PRIVMSG #lobby :tags too long")
    a.expect(r"^:\S+ 417 tagger :Input line was too long$")
    a.send("@+draft/reply=1;time=x\\sy PRIVMSG #lobby :tagged and fine")
    assert a.replies() == []
    got = _quiet_until(b, r"PRIVMSG #lobby :tagged and fine$")
    assert not any("tagger" in line for line in got), got
    assert b.log[-1].startswith(":tagger!")


def test_blank_lines_are_ignored(connect) -> None:
    """Modern IRC, "Messages": servers SHOULD gracefully ignore empty lines: a line of only
    spaces gets no reply at all."""
    a = connect("blank")
    a.sync()
    a.send(" ")
    a.send("     ")
    a.send_raw(b"\r\n\r\n")
    assert a.replies() == []


def test_ison_with_twenty_nicks(connect) -> None:
    """RFC 2812 §4.9 ISON with twenty nicks and no ':' (as clients send it): Modern IRC lets a
    server accept more than 15 parameters, and ISON answers for all of them."""
    a = connect("isonner")
    connect("ison19")
    nicks = " ".join(f"ison{i}" for i in range(1, 20))
    a.send(f"ISON isonner {nicks}")
    a.expect(r" 303 isonner :isonner ison19$")


def test_no_line_over_512_bytes(connect) -> None:
    """RFC 1459 §2.3: no message, CR LF included, exceeds 512 bytes. A 510-byte PRIVMSG
    becomes longer once the server adds its source: its text is cut (at a UTF-8 character
    boundary); a 407 quoting a long target list quotes a cut one."""
    a = connect("longsender")
    b = connect("longreader")
    a.sync()
    b.sync()
    for head in ("PRIVMSG #lobby :", "PRIVMSG longreader :", "NOTICE #lobby,longreader :"):
        a.send(head + "z" * (510 - len(head)))
    euro = "PRIVMSG longreader :"
    a.send(euro + "€" * ((510 - len(euro)) // 3))  # whole characters: UTF-8 is all it takes
    a.send("PRIVMSG " + ",".join(f"t{i:03d}" for i in range(95)) + " :x")
    a.send("PRIVMSG " + "n" * 490 + " :x")
    a.send("PING " + "p" * 500)
    replies = a.replies()
    assert [line.split()[1] for line in replies] == ["407", "401", "PONG"]
    a.send("PRIVMSG longreader :done")
    relayed = _quiet_until(b, r"PRIVMSG longreader :done$")
    relayed = [line for line in relayed if line.startswith(":longsender!")]
    assert len(relayed) == 5, relayed
    for line in (*relayed, *replies):
        assert len(line.encode()) + 2 <= 512, (len(line.encode()), line[:60])
        assert "\ufffd" not in line  # no UTF-8 character was cut in two
    assert all(len(line.encode()) + 2 > 509 for line in relayed)
    assert replies[0].endswith(" :Too many targets (max 4)")
