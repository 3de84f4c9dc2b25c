"""User and server queries through the sans-I/O core: WHOWAS (RFC 2812 §3.6.3, Modern IRC),
INFO, ADMIN, LINKS and STATS (RFC 2812 §3.4), HELP (Modern IRC), USERHOST and ISON (RFC 2812
§4), transcript style, at one worker (the sequencer in-process) and at two (an in-memory hub),
so both paths are held to the same replies."""

from __future__ import annotations

import dataclasses

import pytest

from fastchat.irc.message import Message
from fastchat.server.caps import Capability, Registry
from fastchat.server.commands import COMMANDS, Command
from fastchat.server.commands.context import Context, LinkInfo
from fastchat.server.commands.help import summary
from fastchat.server.connection import Client
from fastchat.server.engine.dispatch import Dispatcher
from fastchat.server.network.records import EUmode, make
from tests.unit.fakenet import FakeNet

S = ":fastchat.local"
#: How RPL_WHOISSERVER in a WHOWAS entry shows FakeNet's clock (1,000,000 s after 1970).
LEFT = "Monday January 12 1970 -- 13:46:40 +00:00"


@pytest.fixture(params=[1, 2], ids=["1worker", "2workers"])
def net(request: pytest.FixtureRequest) -> FakeNet:
    return FakeNet(workers=request.param, autojoin=())


# -- WHOWAS ------------------------------------------------------------------------------------


def whowas_entry(asker: str, nick: str, worker: int) -> list[str]:
    """The 314 and 312 of one entry, for a FakeNet user registered as ``nick`` on
    ``worker`` (FakeClient.register: ``USER <nick> 0 * :Real <nick>``)."""
    return [
        f"{S} 314 {asker} {nick} ~{nick} 10.0.0.{worker + 1} * :Real {nick}",
        f"{S} 312 {asker} {nick} fastchat.local :{LEFT}",
    ]


def test_whowas_after_a_quit_on_another_worker(net: FakeNet) -> None:
    """RFC 2812 §3.6.3: a nick that left the network is in the history of every worker (the
    history is network state, fed by E_QUIT): 314, 312, then 369."""
    asker = net.user("asker")
    gone = net.user("gone", net.last)
    gone.send("QUIT :bye")
    asker.send("WHOWAS gone")
    assert asker.lines() == [
        *whowas_entry("asker", "gone", net.last),
        f"{S} 369 asker gone :End of WHOWAS",
    ]


def test_whowas_after_a_nick_change_newest_first(net: FakeNet) -> None:
    """Modern IRC: "This may either be due to a nickname change or the user leaving IRC",
    and "the most recent entry first"; the nick is looked up under rfc1459 folding, and 369
    repeats it as asked."""
    asker = net.user("asker")
    first = net.user("old", net.last)
    first.send("NICK new")
    second = net.user("old", 0)
    second.send("QUIT")
    asker.send("WHOWAS OLD")
    assert asker.lines() == [
        *whowas_entry("asker", "old", 0),
        *whowas_entry("asker", "old", net.last),
        f"{S} 369 asker OLD :End of WHOWAS",
    ]


@pytest.mark.parametrize(
    ("count", "entries"),
    [("1", 1), ("2", 2), ("3", 2), ("0", 2), ("-1", 2), ("many", 2), ("", 2)],
)
def test_whowas_count(net: FakeNet, count: str, entries: int) -> None:
    """Modern IRC: "up to <count> replies will be returned (or all of them if no <count>
    parameter is given)"; "If given, <count> SHOULD be a positive number. Otherwise, a full
    search is done"."""
    asker = net.user("asker")
    for worker in (0, net.last):
        net.user("twice", worker).send("QUIT")
    asker.send(f"WHOWAS twice {count}".rstrip())
    got = asker.lines()
    assert len([line for line in got if " 314 " in line]) == entries
    assert got[-1] == f"{S} 369 asker twice :End of WHOWAS"


def test_whowas_no_such_nick(net: FakeNet) -> None:
    """Modern IRC: "Servers MUST reply with either ERR_WASNOSUCHNICK or a non-empty list of
    WHOWAS entries, both followed with RPL_ENDOFWHOWAS"; a nick still in use is not history."""
    asker = net.user("asker")
    net.user("here", net.last)
    asker.send("WHOWAS nobody", "WHOWAS here")
    assert asker.lines() == [
        f"{S} 406 asker nobody :There was no such nickname",
        f"{S} 369 asker nobody :End of WHOWAS",
        f"{S} 406 asker here :There was no such nickname",
        f"{S} 369 asker here :End of WHOWAS",
    ]


def test_whowas_without_a_nick(net: FakeNet) -> None:
    """Modern IRC: "If the <nick> argument is missing, they SHOULD send a single reply,
    using either ERR_NONICKNAMEGIVEN or ERR_NEEDMOREPARAMS"."""
    asker = net.user("asker")
    asker.send("WHOWAS", "WHOWAS :")
    assert asker.lines() == [f"{S} 431 asker :No nickname given"] * 2


def test_whowas_history_is_bounded() -> None:
    """``--whowas-size``: the oldest entries go first, on every worker alike."""
    net = FakeNet(workers=2, autojoin=(), whowas_size=2)
    asker = net.user("asker")
    for i in range(3):
        net.user(f"n{i}", i % 2).send("QUIT")
    asker.send("WHOWAS n0", "WHOWAS n2")
    got = asker.lines()
    assert f"{S} 406 asker n0 :There was no such nickname" in got
    assert whowas_entry("asker", "n2", 0)[0] in got
    for core in net.cores:
        assert [e.nick for es in core.state.whowas.values() for e in es] == [b"n1", b"n2"]


def test_a_reload_lowers_the_bound_at_once(net: FakeNet) -> None:
    """``whowas_size`` is reloadable: ``reconfigure`` trims every worker's history to the
    new bound, the oldest entries first (the hub does the same in its reload)."""
    for i in range(3):
        net.user(f"n{i}", i % len(net.cores)).send("QUIT")
    new = dataclasses.replace(net.config, whowas_size=1)
    for core in net.cores:
        core.reconfigure(new)
    for core in net.cores:
        assert [e.nick for es in core.state.whowas.values() for e in es] == [b"n2"]


def test_a_worker_that_starts_later_gets_the_history() -> None:
    """The history travels in the snapshot a new worker loads (B_SNAPSHOT)."""
    net = FakeNet(workers=2, autojoin=())
    net.user("gone", 1).send("QUIT")
    fresh = FakeNet(workers=2, autojoin=())
    fresh.cores[0].load_snapshot(net.state.snapshot())
    assert fresh.cores[0].state.whowas == net.cores[1].state.whowas != {}


# -- INFO, ADMIN, LINKS --------------------------------------------------------------------------


def test_info(net: FakeNet) -> None:
    """Modern IRC INFO: "the server will respond with zero or more RPL_INFO replies,
    followed by one RPL_ENDOFINFO numeric"."""
    asker = net.user("asker")
    asker.send("INFO")
    got = asker.lines()
    assert got[0].startswith(f"{S} 371 asker :fastchat-")
    assert f"{S} 371 asker :fastchat.local: fastchat IRC server" in got
    assert got[-2] == f"{S} 371 asker :On-line since 1970-01-12 13:46:40 UTC"
    assert got[-1] == f"{S} 374 asker :End of /INFO list."
    assert all(" 371 asker :" in line for line in got[:-1])


def test_admin_from_the_settings() -> None:
    """RFC 2812 §3.4.9 ADMIN: 256 with the server's name, 257 where it is, 258 who runs it,
    259 the e-mail address, each from its setting."""
    net = FakeNet(
        autojoin=(),
        admin_location=b"Lyon, France",
        admin_name=b"The fastchat team",
        admin_email=b"ops@example.org",
    )
    asker = net.user("asker")
    asker.send("ADMIN")
    assert asker.lines() == [
        f"{S} 256 asker fastchat.local :Administrative info",
        f"{S} 257 asker :Lyon, France",
        f"{S} 258 asker :The fastchat team",
        f"{S} 259 asker :ops@example.org",
    ]


def test_admin_not_configured(net: FakeNet) -> None:
    """Without settings the four replies still come, saying so."""
    asker = net.user("asker")
    asker.send("ADMIN")
    assert asker.lines()[1:] == [
        f"{S} 257 asker :Location not configured",
        f"{S} 258 asker :Administrator not configured",
        f"{S} 259 asker :E-mail not configured",
    ]


@pytest.mark.parametrize("target", ["fastchat.local", "FASTCHAT.*", "*", "peer"])
def test_a_target_on_this_server(net: FakeNet, target: str) -> None:
    """Modern IRC ADMIN: "If <target> is a server, the information for that server is
    requested. If <target> is a client, the information for the server that client is
    connected to is requested", and "Wildcards are allowed": every client is on this one."""
    asker = net.user("asker")
    net.user("peer", net.last)
    asker.send(f"ADMIN {target}", f"INFO {target}")
    got = asker.lines()
    assert got[0] == f"{S} 256 asker fastchat.local :Administrative info"
    assert got[-1] == f"{S} 374 asker :End of /INFO list."


@pytest.mark.parametrize("command", ["ADMIN", "INFO"])
def test_another_server_is_no_such_server(net: FakeNet, command: str) -> None:
    """Modern IRC: "If <target> is given and a matching server cannot be found, the server
    will respond with the ERR_NOSUCHSERVER numeric and the command will fail"."""
    asker = net.user("asker")
    asker.send(f"{command} irc.example.org")
    assert asker.lines() == [f"{S} 402 asker irc.example.org :No such server"]


@pytest.mark.parametrize(
    ("line", "mask", "listed"),
    [
        ("LINKS", "*", True),
        ("LINKS *.local", "*.local", True),
        ("LINKS fastchat.local *.LOCAL", "*.LOCAL", True),
        ("LINKS *.org", "*.org", False),
    ],
)
def test_links_lists_this_server(net: FakeNet, line: str, mask: str, listed: bool) -> None:
    """RFC 2812 §3.4.5 LINKS: one server however many workers serve it, at hop count 0 with
    its description (364), when it matches the mask; then 365 with the mask."""
    asker = net.user("asker")
    asker.send(line)
    expected = [f"{S} 364 asker fastchat.local fastchat.local :0 fastchat IRC server"]
    assert asker.lines() == [
        *(expected if listed else []),
        f"{S} 365 asker {mask} :End of /LINKS list.",
    ]


def test_links_through_another_server_is_no_such_server(net: FakeNet) -> None:
    """RFC 2812 §3.4.5: "LINKS <remote server> <server mask>" asks another server."""
    asker = net.user("asker")
    asker.send("LINKS irc.example.org *")
    assert asker.lines() == [f"{S} 402 asker irc.example.org :No such server"]


# -- STATS ---------------------------------------------------------------------------------------


def tick(net: FakeNet) -> None:
    """Every worker's once-a-second tick (it reports the command counts)."""
    for core in net.cores:
        core.tick(net.now)
    net.pump()


def test_stats_uptime(net: FakeNet) -> None:
    """Modern IRC STATS u: "how long the server has been up" (242), from the start time every
    worker was given; then 219."""
    asker = net.user("asker")
    net.now += 86400 + 3600 + 60 + 1
    asker.send("STATS u")
    assert asker.lines() == [
        f"{S} 242 asker :Server Up 1 days 1:01:01",
        f"{S} 219 asker u :End of /STATS report",
    ]


def test_stats_commands_count_the_whole_server(net: FakeNet) -> None:
    """Modern IRC STATS m: "a list of commands supported by the server and the usage count
    for each if the usage count is non zero", for the whole server: another worker's counts
    arrive with its next report (every tick), the asker's own worker's are current."""
    asker = net.user("asker")
    talker = net.user("talker", net.last)
    talker.send("PRIVMSG asker :1", "PRIVMSG asker :2", "NOTICE asker :3")  # the fast path
    talker.send("privmsg asker :4", "TIME")  # the parser's path
    tick(net)
    asker.lines()
    asker.send("STATS m")
    assert asker.lines() == [
        f"{S} 212 asker NICK 2",
        f"{S} 212 asker NOTICE 1",
        f"{S} 212 asker PRIVMSG 3",
        f"{S} 212 asker STATS 1",
        f"{S} 212 asker TIME 1",
        f"{S} 212 asker USER 2",
        f"{S} 219 asker m :End of /STATS report",
    ]


def test_stats_commands_between_reports() -> None:
    """Until its next report, another worker's latest commands are not counted yet (STATS m
    is at most about a second behind for other workers); the asker's worker is exact."""
    net = FakeNet(workers=2, autojoin=())
    asker = net.user("asker")
    tick(net)
    net.user("late", 1).send("TIME")
    asker.send("TIME", "STATS m")
    got = [line for line in asker.lines() if " 212 " in line]
    assert f"{S} 212 asker TIME 1" in got
    tick(net)
    asker.send("STATS m")
    assert f"{S} 212 asker TIME 2" in asker.lines()


def test_stats_links(net: FakeNet) -> None:
    """RFC 2812 RPL_STATSLINKINFO for this worker's links (the shell refreshes them every
    second; at one worker there is none: the sequencer is in-process)."""
    asker = net.user("asker")
    asker.send("STATS l")
    assert asker.lines() == [f"{S} 219 asker l :End of /STATS report"]
    net.cores[0].links = (LinkInfo(b"srv[worker0->hub]", 5, 10, 4096, 20, 3000, net.now - 42),)
    asker.send("STATS ?")
    assert asker.lines() == [
        f"{S} 211 asker srv[worker0->hub] 5 10 4 20 2 42",
        f"{S} 219 asker ? :End of /STATS report",
    ]


def test_stats_other_letters_and_errors(net: FakeNet) -> None:
    """Modern IRC: an unknown query gets only RPL_ENDOFSTATS; no query is 461; a target that
    is not this server is 402."""
    asker = net.user("asker")
    asker.send("STATS x", "STATS", "STATS u irc.example.org")
    assert asker.lines() == [
        f"{S} 219 asker x :End of /STATS report",
        f"{S} 461 asker STATS :Not enough parameters",
        f"{S} 402 asker irc.example.org :No such server",
    ]


# -- HELP ------------------------------------------------------------------------------------------


def _help_lines(lines: list[str], subject: str) -> list[str]:
    """The texts of a HELP answer, checking its shape on the way: Modern IRC "a single
    RPL_HELPSTART message, then arbitrarily many RPL_HELPTXT messages, then a single
    RPL_ENDOFHELP", each with the subject, and "the first RPL_HELPTXT message SHOULD be
    empty"."""
    codes = [line.split(" ", 3)[1] for line in lines]
    assert codes == ["704", *["705"] * (len(lines) - 2), "706"]
    prefixes = [line.split(" :", 1)[0].split(" ", 2)[2] for line in lines]
    assert set(prefixes) == {f"ada {subject}"}
    texts = [line.split(" :", 1)[1] if " :" in line else "" for line in lines]
    assert texts[1] == ""
    return texts


def test_help_lists_the_commands(net: FakeNet) -> None:
    """Modern IRC HELP with no subject: the commands of the table a client can use (a test
    hook is none unless enabled), wrapped, each line in 512 bytes."""
    asker = net.user("ada")
    asker.send("HELP")
    got = asker.lines()
    texts = _help_lines(got, "*")
    assert texts[0] == "** fastchat.local help **"
    words = " ".join(texts).split()
    for name in ("PRIVMSG", "WHOWAS", "STATS", "HELP", "HELPOP", "ADMIN"):
        assert name in words
    assert "FAULT" not in words
    assert all(len(line) <= 100 for line in got)


def test_help_on_a_command(net: FakeNet) -> None:
    """Modern IRC: "The <subject> MUST be the one requested by the client, but may be
    casefolded"; the text is the first sentence of the handler's docstring, which cites its
    RFC section and gives its syntax, and what its row asks."""
    asker = net.user("ada")
    asker.send("HELP privmsg", "HELPOP Ping")
    got = asker.lines()
    assert _help_lines(got[:4], "PRIVMSG") == [
        "** PRIVMSG **",
        "",
        "RFC 2812 §3.3.1 PRIVMSG <msgtarget>{,<msgtarget>} <text>.",
        "End of /HELP",
    ]
    assert _help_lines(got[4:], "PING")[-2:] == [
        "Works before registration too.",
        "End of /HELP",
    ]


def test_help_on_nothing_we_know(net: FakeNet) -> None:
    """Modern IRC ERR_HELPNOTFOUND: "<client> <subject> :No help available on this topic",
    the subject as given "unless it would be an invalid parameter, in which case it MUST be
    *"; a test hook is no topic unless enabled."""
    asker = net.user("ada")
    asker.send("HELP nothing", "HELP :two words", "HELP FAULT")
    assert asker.lines() == [
        f"{S} 524 ada nothing :No help available on this topic",
        f"{S} 524 ada * :No help available on this topic",
        f"{S} 524 ada FAULT :No help available on this topic",
    ]


def test_help_before_registration() -> None:
    """HELP works before registration (a client may ask how to register)."""
    net = FakeNet(autojoin=())
    c = net.connect(0)
    c.send("HELP NICK")
    assert c.lines()[0] == f"{S} 704 * NICK :** NICK **"


def test_help_shows_a_capabilitys_command_once_negotiated() -> None:
    """A command that needs a capability does not exist for a client without it (421), so
    HELP neither lists nor explains it until the capability is negotiated."""

    def capped(ctx: Context, client: Client, msg: Message) -> None:
        """IRCv3 example: a command of the example/x capability."""

    net = FakeNet(autojoin=(), caps=Registry([Capability(b"example/x")]))
    row = Command(b"CAPPED", capped, capability=b"example/x")
    for core in net.cores:
        core.dispatcher = Dispatcher(core, {**COMMANDS, b"CAPPED": row})
    asker = net.user("ada")
    asker.send("HELP CAPPED")
    assert asker.lines() == [f"{S} 524 ada CAPPED :No help available on this topic"]
    asker.send("CAP REQ example/x", "HELP", "HELP capped")
    got = asker.lines()
    assert "CAPPED" in " ".join(got[:8])
    assert got[-3:] == [
        f"{S} 705 ada CAPPED :IRCv3 example: a command of the example/x capability.",
        f"{S} 705 ada CAPPED :Needs the example/x capability.",
        f"{S} 706 ada CAPPED :End of /HELP",
    ]


@pytest.mark.parametrize("name", sorted(COMMANDS), ids=lambda n: n.decode())
def test_every_command_has_a_one_sentence_summary(name: bytes) -> None:
    """HELP's text for each row: its docstring's first sentence, whole (a section number
    like §3.4.1 or STATS's ``?`` does not end it), however long: HELP wraps it."""
    text = summary(COMMANDS[name])
    assert text[-1] in '.!?"' and len(text) > 10, text
    assert "``" not in text


# -- USERHOST and ISON -----------------------------------------------------------------------------


def test_userhost(net: FakeNet) -> None:
    """Modern IRC RPL_USERHOST: ``nickname [ isop ] "=" isaway hostname``: ``*`` for an
    operator (user mode +o, network state, so from any worker), ``-`` away and ``+`` not;
    up to five nicks, each its own parameter; nicks nobody holds are left out."""
    asker = net.user("asker")
    op = net.user("op", net.last)
    away = net.user("away", net.last)
    away.send("AWAY :lunch")
    oper = make(EUmode, op.client.uid, b"o", b"+o", int(net.now * 1000))  # OPER's effect
    if net.standalone:
        net.cores[0].apply(oper)
    else:
        net.event(oper)
        net.pump()
    asker.send("USERHOST op away nobody asker")
    host = f"10.0.0.{net.last + 1}"
    assert asker.lines() == [
        f"{S} 302 asker :op*=+~op@{host} away=-~away@{host} asker=+~asker@10.0.0.1"
    ]
    asker.send("USERHOST a b c d e asker")
    assert asker.lines() == [f"{S} 302 asker :"]  # the sixth nick is not looked at


def test_ison(net: FakeNet) -> None:
    """RFC 2812 §4.9 ISON: the nicks given (in one or several parameters) that are on the
    network, as they are spelt there."""
    asker = net.user("asker")
    net.user("Here", net.last)
    asker.send("ISON here nobody", "ISON :HERE asker x")
    assert asker.lines() == [f"{S} 303 asker :Here", f"{S} 303 asker :Here asker"]
