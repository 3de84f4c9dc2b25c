"""IRCv3 capabilities against the real server at one and four workers, over raw sockets:
``CAP LS 302`` lists what is offered (cap-notify, enabled by it), and ``multi-prefix`` and
``userhost-in-names`` change NAMES (the command's and the JOIN burst's), WHO and WHOIS for
the client that negotiated them only. Clients land on whichever worker the kernel picks, so at
four workers the channel's members are usually spread over several.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from fastchat.server.caps import CAPABILITIES
from tests.ircclient import IRCClient

Connect = Callable[..., IRCClient]
#: What CAP LS lists: every capability offered, in name order
OFFERED = " ".join(cap.name.decode() for cap in CAPABILITIES)


#: What CAP LS 302 lists: every capability the registry declares, with its value
OFFERED = [t.decode() for t in CAPABILITIES.ls_tokens(302)]


def cap_ls(c: IRCClient) -> list[str]:
    """The tokens of a ``CAP LS`` answer, however many lines it takes (``* :`` on all but
    the last)."""
    tokens: list[str] = []
    while True:
        m = c.expect(r"^:\S+ CAP \S+ LS (\* )?:(.*)$")
        tokens += m.group(2).split()
        if not m.group(1):
            return tokens


def negotiated(connect: Connect, nick: str, caps: str) -> IRCClient:
    """A client that asks ``CAP LS 302``, requests ``caps`` (ACK expected) and registers."""
    c = connect(nick, register=False)
    c.send("CAP LS 302")
    assert cap_ls(c) == OFFERED
    c.send(f"CAP REQ :{caps}")
    c.expect(rf"^:\S+ CAP \* ACK :{re.escape(caps)}$")
    c.send("CAP END")
    c.register(nick)
    c.sync()  # past the autojoin's burst
    return c


def assert_lines(got: list[str], expected: list[str]) -> None:
    """``got`` begins with lines matching ``expected`` (regular expressions), one by one."""
    assert len(got) >= len(expected), got
    wrong = [(x, line) for x, line in zip(expected, got, strict=False) if not re.fullmatch(x, line)]
    assert not wrong, wrong


def test_cap_ls_and_list(connect: Connect) -> None:
    """CAP LS 302 offers the capabilities; it enabled cap-notify, which CAP LIST shows
    next to what was requested."""
    c = negotiated(connect, "capls", "multi-prefix")
    c.send("CAP LIST")
    assert [line.split(" ", 1)[1] for line in c.replies()] == [
        "CAP capls LIST :cap-notify multi-prefix"
    ]


def test_multi_prefix_and_userhost_in_names(connect: Connect) -> None:
    """NAMES (also on JOIN), WHO and WHOIS: every prefix, highest first, and nick!user@host
    for the client that negotiated them; the highest prefix and nicks for another."""
    plain = connect("cnplain")
    plain.send("JOIN #capnames")
    plain.expect(r" 366 cnplain #capnames ")
    plain.send("MODE #capnames +v cnplain")
    plain.expect(r"^:cnplain!\S+ MODE #capnames \+v :?cnplain$")
    both = negotiated(connect, "cnboth", "multi-prefix userhost-in-names")
    both.sync()
    both.send("JOIN #capnames")
    both.expect(r"^:cnboth!\S+ JOIN #capnames$")
    both.expect(r"^:\S+ 353 cnboth = #capnames :@\+cnplain!~cnplain@\S+ cnboth!~cnboth@\S+$")
    both.expect(r" 366 cnboth #capnames ")
    plain.expect(r"^:cnboth!\S+ JOIN #capnames$")

    both.send("NAMES #capnames")
    both.send("WHO #capnames")
    both.send("WHOIS cnplain")
    got = [line.split(" ", 1)[1] for line in both.replies()]
    expected = [
        r"353 cnboth = #capnames :@\+cnplain!~cnplain@\S+ cnboth!~cnboth@\S+",
        r"366 cnboth #capnames :End of /NAMES list\.",
        r"352 cnboth #capnames ~cnplain \S+ \S+ cnplain H@\+ :0 Real cnplain",
        r"352 cnboth #capnames ~cnboth \S+ \S+ cnboth H :0 Real cnboth",
        r"315 cnboth #capnames :End of WHO list",
        r"311 cnboth cnplain ~cnplain \S+ \* :Real cnplain",
        # whoever joined #lobby first on this server is its operator: maybe cnplain
        r"319 cnboth cnplain :@?#lobby @\+#capnames",
    ]
    assert_lines(got, expected)

    plain.send("NAMES #capnames")
    plain.send("WHO #capnames")
    plain.send("WHOIS cnplain")
    got = [line.split(" ", 1)[1] for line in plain.replies()]
    expected = [
        r"353 cnplain = #capnames :@cnplain cnboth",
        r"366 cnplain #capnames :End of /NAMES list\.",
        r"352 cnplain #capnames ~cnplain \S+ \S+ cnplain H@ :0 Real cnplain",
        r"352 cnplain #capnames ~cnboth \S+ \S+ cnboth H :0 Real cnboth",
        r"315 cnplain #capnames :End of WHO list",
        r"311 cnplain cnplain ~cnplain \S+ \* :Real cnplain",
        r"319 cnplain cnplain :@?#lobby @#capnames",
    ]
    assert_lines(got, expected)


def test_no_implicit_names(connect: Connect) -> None:
    """IRCv3 no-implicit-names: a JOIN comes without 353/366 for the
    client that negotiated it, and an explicit NAMES is answered as usual."""
    plain = connect("ninplain")
    plain.send("JOIN #nonames")
    plain.expect(r" 366 ninplain #nonames ")
    quiet = negotiated(connect, "ninquiet", "no-implicit-names")
    quiet.send("JOIN #nonames")
    quiet.expect(r"^:ninquiet!\S+ JOIN #nonames$")
    assert not [x for x in quiet.sync() if re.search(r" (353|366) ", x)]
    quiet.send("NAMES #nonames")
    got = [line.split(" ", 1)[1] for line in quiet.replies()]
    assert_lines(got, [r"353 ninquiet = #nonames :@ninplain ninquiet", r"366 ninquiet #nonames .*"])


def test_pre_away(connect: Connect) -> None:
    """IRCv3 draft/pre-away: AWAY before registering; the user is away from its first
    moment, on every worker (WHOIS 301 from another connection)."""
    c = connect("pabg", register=False)
    c.send("CAP LS 302")
    cap_ls(c)
    c.send("CAP REQ :draft/pre-away")
    c.expect(r"^:\S+ CAP \* ACK :draft/pre-away$")
    c.send("AWAY :fetching history")
    c.send("CAP END")
    c.register("pabg")
    c.expect(r" 306 pabg ")
    for i in range(3):  # from connections on other workers, at four
        w = connect(f"pawatch{i}")
        w.send("WHOIS pabg")
        w.expect(rf" 301 pawatch{i} pabg :fetching history$")
