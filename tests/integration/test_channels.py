"""Channels (RFC 2812 §3.2): JOIN, PART, TOPIC, NAMES, LIST, KICK, INVITE, MODE."""

from __future__ import annotations


def test_join_part_several_channels(connect) -> None:
    """RFC 2812 §3.2.1 JOIN <channel>{,<channel>}; the joiner gets JOIN, then 353/366."""
    a = connect("joiner")
    b = connect("other")
    a.send("JOIN #one,#two")
    a.expect(r":joiner!\S+ JOIN #one$")
    a.expect(r" 353 joiner = #one :@joiner$")
    a.expect(r" 366 joiner #one ")
    a.expect(r":joiner!\S+ JOIN #two$")
    b.send("JOIN #one")
    b.expect(r" 353 other = #one :(@joiner other|other @joiner)$")
    a.expect(r":other!\S+ JOIN #one$")
    b.send("PART #one :see ya")
    b.expect(r":other!\S+ PART #one :see ya$")
    a.expect(r":other!\S+ PART #one :see ya$")
    b.send("PART #one")
    b.expect(r" 442 other #one :You're not on that channel")
    b.send("PART #nowhere")
    b.expect(r" 403 other #nowhere :No such channel")


def test_join_zero_parts_all(connect) -> None:
    """RFC 2812 §3.2.1: "JOIN 0" leaves every channel."""
    a = connect("zero")
    a.send("JOIN #z1,#z2")
    a.expect(r" 366 zero #z2 ")
    a.send("JOIN 0")
    parted = {a.expect(r":zero!\S+ PART (#\S+)").group(1) for _ in range(3)}
    assert parted == {"#lobby", "#z1", "#z2"}


def test_bad_channel_name(connect) -> None:
    a = connect("badchan")
    a.send("JOIN lobby")
    a.expect(r" 403 badchan lobby ")
    a.send("JOIN")
    a.expect(r" 461 badchan JOIN ")


def test_topic(connect) -> None:
    """RFC 2812 §3.2.4: 331 no topic; TOPIC change seen by members; 332 + 333 afterwards;
    +t (the default) needs a channel operator (482)."""
    op = connect("topop")
    member = connect("topmem")
    op.send("JOIN #t")
    op.expect(r" 366 topop #t ")
    member.send("JOIN #t")
    member.expect(r" 366 topmem #t ")
    member.send("TOPIC #t")
    member.expect(r" 331 topmem #t :No topic is set")
    member.send("TOPIC #t :mine now")
    member.expect(r" 482 topmem #t :You're not channel operator")
    op.send("TOPIC #t :fresh topic")
    member.expect(r":topop!\S+ TOPIC #t :fresh topic$")
    member.send("TOPIC #t")
    member.expect(r" 332 topmem #t :fresh topic$")
    member.expect(r" 333 topmem #t topop!\S+ \d+$")
    late = connect("toplate")
    late.send("JOIN #t")
    late.expect(r" 332 toplate #t :fresh topic$")


def test_names_and_list(connect) -> None:
    a = connect("lister")
    a.send("JOIN #listme")
    a.send("TOPIC #listme :about lists")
    a.expect(r"TOPIC #listme")
    a.send("LIST")
    a.expect(r" 321 lister Channel :Users  Name")
    a.expect(r" 322 lister #listme 1 :about lists$")
    a.expect(r" 323 lister :End of /LIST")
    a.send("NAMES #listme,#nothere")
    a.expect(r" 353 lister = #listme :@lister$")
    a.expect(r" 366 lister #listme,#nothere ")


def test_list_searches(connect) -> None:
    """ISUPPORT ELIST=CMNTU: LIST by mask, not-mask and user count, answered from any
    worker's replica (the members on whichever workers the kernel put them)."""
    a = connect("elister")
    a.send("VERSION")
    a.expect(r" 005 elister .*ELIST=CMNTU")
    others = [connect(f"elist{i}") for i in range(3)]
    a.send("JOIN #el-one,#el-two,#el-three")
    for c in others:
        c.send("JOIN #el-two")
        c.expect(r" 366 \S+ #el-two ")
    others[0].send("JOIN #el-three")
    others[0].expect(r" 366 \S+ #el-three ")

    def listed(terms: str) -> list[str]:
        asker = others[2]
        asker.send(f"LIST {terms}")
        lines = asker.expect_until(r" 323 ")
        return sorted(line.split()[3] for line in lines if " 322 " in line)

    assert listed("#el-*") == ["#el-one", "#el-three", "#el-two"]
    assert listed("#EL-T*") == ["#el-three", "#el-two"]
    assert listed("#el-*,!*two") == ["#el-one", "#el-three"]
    assert listed("#el-*,>1") == ["#el-three", "#el-two"]
    assert listed("#el-*,>2") == ["#el-two"]
    assert listed("#el-*,<2") == ["#el-one"]
    assert listed("#el-*,C<10") == ["#el-one", "#el-three", "#el-two"]
    assert listed("#el-*,C>10") == []


def test_kick_and_invite_only(connect) -> None:
    """RFC 2812 §3.2.8 KICK (482 for non-ops, 441 for non-members); §3.2.7 INVITE with +i."""
    op = connect("kop")
    victim = connect("kvic")
    op.send("JOIN #k")
    op.expect(r" 366 kop #k ")
    victim.send("JOIN #k")
    victim.expect(r" 366 kvic #k ")
    victim.send("KICK #k kop")
    victim.expect(r" 482 kvic #k ")
    op.send("KICK #k nobody")
    op.expect(r" 441 kop nobody #k ")
    op.send("KICK #k kvic :out")
    victim.expect(r":kop!\S+ KICK #k kvic :out$")
    op.expect(r":kop!\S+ KICK #k kvic :out$")
    op.send("MODE #k +i")
    op.expect(r":kop!\S+ MODE #k \+i$")
    victim.send("JOIN #k")
    victim.expect(r" 473 kvic #k :Cannot join channel \(\+i\)")
    op.send("INVITE kvic #k")
    op.expect(r" 341 kop kvic #k$")
    victim.expect(r":kop!\S+ INVITE kvic :#k$")
    victim.send("JOIN #k")
    victim.expect(r":kvic!\S+ JOIN #k$")


def test_mode_queries_and_changes(connect) -> None:
    """RFC 2812 §3.2.3: 324 RPL_CHANNELMODEIS, 329 creation time; +o, +v, +k, +l, +m, +n."""
    op = connect("mop")
    other = connect("mother")
    op.send("JOIN #m")
    op.expect(r" 366 mop #m ")
    op.send("MODE #m")
    op.expect(r" 324 mop #m \+nt$")
    op.expect(r" 329 mop #m \d+$")
    other.send("JOIN #m")
    other.expect(r" 366 mother #m ")
    other.send("MODE #m +m")
    other.expect(r" 482 mother #m ")
    op.send("MODE #m +mv mother")
    other.expect(r":mop!\S+ MODE #m \+mv :?mother$")
    other.send("PRIVMSG #m :voiced, so I may speak")
    op.expect(r":mother!\S+ PRIVMSG #m :voiced")
    op.send("MODE #m -v mother")
    other.expect(r"MODE #m -v :?mother$")
    other.send("PRIVMSG #m :silenced?")
    other.expect(r" 404 mother #m :Cannot send to channel")
    op.send("MODE #m +kl secret 5")
    op.expect(r"MODE #m \+kl secret :?5$")
    op.send("MODE #m")
    op.expect(r" 324 mop #m \+mnt?k?l? ?.*secret 5$|324 mop #m \+\w+ secret :?5$")
    op.send("MODE #m +z")
    op.expect(r" 472 mop z ")
    op.send("MODE mop")
    op.expect(r" 221 mop :?\+")
    op.send("MODE mop +i")
    op.expect(r":mop MODE mop :\+i")
    op.send("MODE mother +i")
    op.expect(r" 502 mop ")


def test_ban(connect) -> None:
    op = connect("bop")
    bad = connect("baddie")
    op.send("JOIN #b")
    op.expect(r" 366 bop #b ")
    op.send("MODE #b +b baddie")
    op.expect(r"MODE #b \+b :?baddie!\*@\*$")
    bad.send("JOIN #b")
    bad.expect(r" 474 baddie #b ")
    op.send("MODE #b b")
    op.expect(r" 367 bop #b baddie!\*@\* bop!\S+ :?\d+$")  # (Modern IRC: who set it, when)
    op.expect(r" 368 bop #b ")


def test_kick_without_comment_uses_the_kickers_nick(connect) -> None:
    """RFC 2812 §3.2.8: "If a "comment" is given, this will be sent instead of the default
    message, the nickname of the user issuing the KICK"."""
    op = connect("kdef")
    victim = connect("kdefvic")
    op.send("JOIN #kd")
    op.expect(r" 366 kdef #kd ")
    victim.send("JOIN #kd")
    victim.expect(r" 366 kdefvic #kd ")
    op.send("KICK #kd kdefvic")
    victim.expect(r"^:kdef!\S+ KICK #kd kdefvic :kdef$")
    op.expect(r"^:kdef!\S+ KICK #kd kdefvic :kdef$")


def test_mode_member_of_nobody_is_no_such_nick(connect) -> None:
    """Modern IRC, MODE: a member mode for a nick that does not exist is 401 ERR_NOSUCHNICK;
    for one that exists but is not on the channel, 441 ERR_USERNOTINCHANNEL."""
    op = connect("mnop")
    connect("mnout")
    op.send("JOIN #mn")
    op.expect(r" 366 mnop #mn ")
    op.send("MODE #mn +o nobody")
    op.expect(r" 401 mnop nobody :No such nick/channel$")
    op.send("MODE #mn +v mnout")
    op.expect(r" 441 mnop mnout #mn :They aren't on that channel$")


def test_names_of_several_channels(connect) -> None:
    """RFC 2812 §3.2.5 NAMES <channel>{,<channel>}: the 353s of each channel, in the order
    asked, then one 366 for the whole list (as Solanum and InspIRCd answer, and irctest's
    testNamesMultipleChannels2812 checks); a channel that does not exist adds nothing."""
    a = connect("namesa")
    b = connect("namesb")
    a.send("JOIN #na")
    a.expect(r" 366 namesa #na ")
    b.send("JOIN #nb")
    b.expect(r" 366 namesb #nb ")
    a.sync()
    a.send("NAMES #na,#nb,#nc,,#NA")
    assert a.replies() == [
        ":fastchat.local 353 namesa = #na :@namesa",
        ":fastchat.local 353 namesa = #nb :@namesb",
        ":fastchat.local 353 namesa = #na :@namesa",
        ":fastchat.local 366 namesa #na,#nb,#nc,#NA :End of /NAMES list.",
    ]


def test_kick_several_invite_list_and_no_ctcp(connect) -> None:
    """KICK of several users and of paired channels and users; INVITE alone lists one's
    invitations (336/337); +C refuses a CTCP but ACTION with 404. Members on whichever
    workers the kernel put them: the answers are the same at one worker and four."""
    op = connect("kxop")
    v1, v2, guest = connect("kxv1"), connect("kxv2"), connect("kxguest")
    op.send("JOIN #kx1,#kx2")
    op.expect(r" 366 kxop #kx2 ")
    for v in (v1, v2):
        v.send("JOIN #kx1,#kx2")
        v.expect(r" 366 \S+ #kx2 ")
    op.send("KICK #kx1 kxv1,kxv2 :both")
    v2.expect(r":kxop!\S+ KICK #kx1 kxv1 :both$")
    v2.expect(r":kxop!\S+ KICK #kx1 kxv2 :both$")
    op.send("KICK #kx2,#kx2 kxv1,kxv2 :paired")
    v1.expect(r":kxop!\S+ KICK #kx2 kxv1 :paired$")
    op.send("KICK #kx1,#kx2 kxv1")
    op.expect(r" 461 kxop KICK ")
    op.send("MODE #kx1 +i")
    op.send("INVITE kxguest #kx1")
    guest.expect(r":kxop!\S+ INVITE kxguest :?#kx1$")
    guest.send("INVITE")
    guest.expect(r" 336 kxguest #kx1$")
    guest.expect(r" 337 kxguest :End of /INVITE list$")
    guest.send("JOIN #kx1")
    guest.expect(r" 366 kxguest #kx1 ")
    op.send("MODE #kx1 +C")
    guest.expect(r"MODE #kx1 \+C$")
    guest.send("PRIVMSG #kx1 :\x01PING 1\x01")
    guest.expect(r" 404 kxguest #kx1 :Cannot send CTCP to channel \(\+C\)$")
    guest.send("PRIVMSG #kx1 :\x01ACTION waves\x01")
    op.expect(r":kxguest!\S+ PRIVMSG #kx1 :\x01ACTION waves\x01$")
    op.sync()
    assert not [line for line in op.log if "PING 1" in line], "a CTCP reached the channel"


def test_exceptions_invite_exceptions_and_mutes(connect) -> None:
    """+e lets a banned user in, +I lets a user into a +i channel uninvited, +b m: keeps a
    member quiet until +e m: lifts it; +e and +I are listed to operators only (network/
    access.py). Clients on whichever workers the kernel put them: one answer at 1 and 4."""
    op = connect("exop")
    bad, inv, quiet = connect("exbad"), connect("exinv"), connect("exquiet")
    op.send("JOIN #ex")
    op.expect(r" 366 exop #ex ")
    op.send("MODE #ex +b exbad")
    op.expect(r"MODE #ex \+b :?exbad!\*@\*$")
    bad.send("JOIN #ex")
    bad.expect(r" 474 exbad #ex ")
    op.send("MODE #ex +e exbad")
    op.expect(r"MODE #ex \+e :?exbad!\*@\*$")
    bad.send("JOIN #ex")
    bad.expect(r" 366 exbad #ex ")
    bad.send("MODE #ex e")
    bad.expect(r" 482 exbad #ex ")
    op.send("MODE #ex e")
    op.expect(r" 348 exop #ex exbad!\*@\* exop!\S+ :?\d+$")
    op.expect(r" 349 exop #ex ")
    op.send("MODE #ex +iI exinv")
    op.expect(r"MODE #ex \+iI :?exinv!\*@\*$")
    inv.send("JOIN #ex")
    inv.expect(r" 366 exinv #ex ")
    op.send("MODE #ex -i+b m:exquiet")
    op.expect(r"MODE #ex -i\+b :?m:exquiet!\*@\*$")
    quiet.send("JOIN #ex")
    quiet.expect(r" 366 exquiet #ex ")
    quiet.send("PRIVMSG #ex :muted")
    quiet.expect(r" 404 exquiet #ex ")
    op.send("MODE #ex +e m:exquiet")
    op.expect(r"MODE #ex \+e :?m:exquiet!\*@\*$")
    quiet.expect(r"MODE #ex \+e :?m:exquiet!\*@\*$")  # (its worker has applied it)
    quiet.send("PRIVMSG #ex :heard")
    op.expect(r":exquiet!\S+ PRIVMSG #ex :heard$")
    op.sync()
    assert not [line for line in op.log if "muted" in line], "a muted line reached the channel"
    op.send("MODE #ex +b x:nope")
    op.expect(r" 696 exop #ex b x:nope ")
