"""Queries answered from every worker's replica of the network (RFC 2812 §3.4, §3.6)."""

from __future__ import annotations

import re
import time


def test_who_channel_and_nick(connect) -> None:
    """RFC 2812 §3.6.1 WHO: 352 per member, then 315."""
    a = connect("whoa")
    b = connect("whob")
    a.send("JOIN #w")
    a.expect(r" 366 whoa #w ")
    b.send("JOIN #w")
    b.expect(r" 366 whob #w ")
    b.send("AWAY :busy")
    b.expect(r" 306 ")
    a.send("WHO #w")
    got = {
        a.expect(r" 352 whoa #w ~(\S+) \S+ \S+ (\S+) ([HG]@?) :0 Real (\S+)$").group(2, 3)
        for _ in range(2)
    }
    assert got == {("whoa", "H@"), ("whob", "G")}
    a.expect(r" 315 whoa #w :End of WHO list")
    a.send("WHO whob")
    a.expect(r" 352 whoa \* ~whob \S+ \S+ whob G :0 Real whob$")
    a.expect(r" 315 whoa whob ")


def test_whois(connect) -> None:
    """RFC 2812 §3.6.2 WHOIS: 311, 319, 312, 318; 401 + 318 for nobody."""
    a = connect("wisa")
    connect("wisb")
    a.send("WHOIS wisb")
    a.expect(r" 311 wisa wisb ~wisb \S+ \* :Real wisb$")
    a.expect(r" 319 wisa wisb :#lobby$")
    a.expect(r" 312 wisa wisb \S+ :")
    a.expect(r" 318 wisa wisb :End of /WHOIS list.")
    a.send("WHOIS nobody")
    a.expect(r" 401 wisa nobody ")
    a.expect(r" 318 wisa nobody ")


def test_lusers_version_time_motd_ison_userhost(connect) -> None:
    a = connect("misc")
    a.send("LUSERS")
    a.expect(r" 251 misc :There are \d+ users")
    a.expect(r" 266 misc ")
    a.send("VERSION")
    a.expect(r" 351 misc fastchat-\S+ \S+ :")
    a.expect(r" 005 misc ")
    a.send("TIME")
    a.expect(r" 391 misc \S+ :\w+ ")
    a.send("MOTD")
    a.expect(r" 375 misc ")
    a.expect(r" 376 misc ")
    a.send("ISON misc nobody MISC")
    a.expect(r" 303 misc :misc misc$")
    a.send("USERHOST misc")
    a.expect(r" 302 misc :misc=\+~misc@\S+$")


def test_invisible_users(connect) -> None:
    """RFC 2812 §3.1.5 "+i - marks a users as invisible": WHO by mask and WHO/NAMES of a
    channel the asker is not on leave the user out (an exact nick still finds them); LUSERS
    counts them apart. Asked from another client, which with four workers may well be on
    another worker: the mode is network state."""
    inv = connect("invis")
    seer = connect("seer")
    inv.send("PART #lobby")
    inv.send("JOIN #hideout")
    inv.send("MODE invis +i")
    inv.expect(r"^:invis MODE invis :\+i$")
    seer.sync()
    seer.send("WHO invi*")
    seer.send("WHO #hideout")
    seer.send("NAMES #hideout")
    seer.send("WHO invis")
    assert seer.replies() == [
        ":fastchat.local 315 seer invi* :End of WHO list",
        ":fastchat.local 315 seer #hideout :End of WHO list",
        ":fastchat.local 366 seer #hideout :End of /NAMES list.",
        ":fastchat.local 352 seer * ~invis 127.0.0.1 fastchat.local invis H :0 Real invis",
        ":fastchat.local 315 seer invis :End of WHO list",
    ]
    seer.send("LUSERS")
    seer.expect(r" 251 seer :There are \d+ users and 1 invisible on 1 servers$")
    seer.send("JOIN #hideout")
    seer.expect(r" 353 seer = #hideout :.*@invis")
    seer.send("WHO invi*")
    seer.expect(r" 352 seer \* ~invis ")


def test_lusers_max_is_the_peak(connect) -> None:
    """RFC 2812 §5.1 RPL_LOCALUSERS/RPL_GLOBALUSERS (265/266) give the current count and the
    most there have been at once: a quit lowers the first, not the second."""
    a = connect("peaka")
    b = connect("peakb")
    a.send("LUSERS")
    m = a.expect(r" 266 peaka (\d+) (\d+) :")
    current, peak = int(m.group(1)), int(m.group(2))
    assert peak >= current >= 2
    b.send("QUIT")
    b.wait_closed()
    a.send("LUSERS")
    a.expect(rf" 265 peaka {current - 1} {peak} :")
    a.expect(rf" 266 peaka {current - 1} {peak} :")


def _elsewhere(server, connect, asker, nick: str):
    """A client registered as ``nick`` on another worker than ``asker`` (at four workers the
    kernel spreads connections: a few tries find one; tries that land on the asker's worker
    leave before they register, so they leave no WHOWAS entry)."""
    mine = server.worker_of(asker.sock.getsockname()[1])
    for _ in range(40):
        client = connect(nick, register=False)
        client.sync()  # accepted: the worker holding it is known
        if server.workers == 1 or server.worker_of(client.sock.getsockname()[1]) != mine:
            client.register(nick)
            return client
        client.close()
    raise AssertionError("no connection landed on another worker")


def test_whowas_sees_a_nick_change_and_a_quit_on_another_worker(server, connect) -> None:
    """RFC 2812 §3.6.3 WHOWAS, from a client on another worker than the one whose user gave
    up the nicks: 314 and 312 per entry, newest first; 406 for a nick never used; 369 at the
    end of each."""
    asker = connect("wwask")
    asker.sync()  # past the autojoin's NAMES
    gone = _elsewhere(server, connect, asker, "wwold")
    gone.send("NICK wwnew")
    gone.expect(r"^:wwold!\S+ NICK :?wwnew$")
    gone.send("QUIT :bye")
    gone.wait_closed()
    asker.send("WHOWAS wwold")
    asker.send("WHOWAS WWNEW 5")
    asker.send("WHOWAS wwnever")
    got = asker.replies()
    assert got[:3] == [
        ":fastchat.local 314 wwask wwold ~wwold 127.0.0.1 * :Real wwold",
        got[1],
        ":fastchat.local 369 wwask wwold :End of WHOWAS",
    ]
    assert re.fullmatch(r":fastchat.local 312 wwask wwold fastchat.local :\w+ .+", got[1])
    assert got[3] == ":fastchat.local 314 wwask wwnew ~wwold 127.0.0.1 * :Real wwold"
    assert got[5:] == [
        ":fastchat.local 369 wwask WWNEW :End of WHOWAS",
        ":fastchat.local 406 wwask wwnever :There was no such nickname",
        ":fastchat.local 369 wwask wwnever :End of WHOWAS",
    ]


def test_info_admin_links(connect) -> None:
    """RFC 2812 §3.4.10 INFO (371..., 374), §3.4.9 ADMIN (256-259), §3.4.5 LINKS (this one
    server, then 365), whichever worker answers."""
    a = connect("srvq")
    a.sync()
    a.send("INFO")
    a.send("ADMIN")
    a.send("LINKS")
    got = a.replies()
    assert [line.split()[1] for line in got] == ["371"] * 4 + ["374"] + [
        "256",
        "257",
        "258",
        "259",
        "364",
        "365",
    ]
    assert (
        got[-2] == ":fastchat.local 364 srvq fastchat.local fastchat.local :0 fastchat IRC server"
    )
    assert got[-1] == ":fastchat.local 365 srvq * :End of /LINKS list."


def _until(client, line: str, pattern: str, timeout: float = 10.0) -> re.Match[str]:
    """Send ``line`` until a reply matches ``pattern`` (what another worker reports reaches
    the network within about a second: poll by round trips, as ``wait_nicks_free`` does)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        client.send(line)
        for reply in client.replies():
            if m := re.search(pattern, reply):
                return m
    raise AssertionError(f"{client.nick}: no reply to {line!r} matched {pattern!r}")


def test_stats_uptime_and_one_start_time_for_every_worker(server, connect) -> None:
    """STATS u (242) counts from the server's start, which every worker knows alike: two
    clients on two workers read the same RPL_CREATED."""
    a = connect("upa")
    b = _elsewhere(server, connect, a, "upb")
    created = [next(line for line in c.log if " 003 " in line).split(":", 2)[2] for c in (a, b)]
    assert created[0] == created[1]
    a.send("STATS u")
    got = a.replies()
    assert re.fullmatch(r":fastchat.local 242 upa :Server Up 0 days \d+:\d\d:\d\d", got[-2])
    assert got[-1] == ":fastchat.local 219 upa u :End of /STATS report"


def test_stats_commands_count_every_worker(server, connect) -> None:
    """STATS m (212) is complete for the whole server: commands run on another worker are
    counted once its next report (about a second) is applied."""
    a = connect("cnta")
    a.sync()
    m = _until(a, "STATS m", r" (?:212 cnta USERS (\d+)|219 cnta m )")
    before = int(m.group(1) or 0)
    b = _elsewhere(server, connect, a, "cntb")
    for _ in range(3):
        b.send("USERS")
    b.sync()
    _until(a, "STATS m", rf" 212 cnta USERS {before + 3}$")


def test_stats_links(server, connect) -> None:
    """STATS l (211): at four workers, this worker's bus link to the hub; at one worker the
    sequencer is in-process and there is no link. 219 either way."""
    a = connect("lnk")
    a.sync()
    if server.workers == 1:
        a.send("STATS l")
        assert a.replies() == [":fastchat.local 219 lnk l :End of /STATS report"]
        return
    m = _until(a, "STATS l", r" 211 lnk fastchat\.local\[worker\d->hub\] (\d+ ){5}\d+$")
    assert m


def test_help(connect) -> None:
    """Modern IRC HELP: 704, 705..., 706 with the subject; 524 for an unknown one."""
    a = connect("helper")
    a.sync()
    a.send("HELP whowas")
    a.send("HELP nosuchthing")
    assert a.replies() == [
        ":fastchat.local 704 helper WHOWAS :** WHOWAS **",
        ":fastchat.local 705 helper WHOWAS :",
        ":fastchat.local 705 helper WHOWAS :RFC 2812 §3.6.3 WHOWAS <nickname> [<count>]: "
        "who used a nick before,",
        ":fastchat.local 705 helper WHOWAS :newest first.",
        ":fastchat.local 706 helper WHOWAS :End of /HELP",
        ":fastchat.local 524 helper nosuchthing :No help available on this topic",
    ]
