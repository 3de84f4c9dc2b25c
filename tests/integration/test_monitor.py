"""IRCv3 MONITOR against the real server at one and four workers, over raw sockets: a nick
that signs on, changes nick and quits on another worker than its watcher is notified at once
(by the watcher's next PING's PONG, which passes the read barrier), the ``+`` answer is current,
and bad input gets the spec's answers. Exact lines; what other users do in ``#lobby`` (their
JOIN, NICK, QUIT) is left out by ``replies()``.
"""

from __future__ import annotations

from collections.abc import Callable

from fastchat.server.runtime import process
from tests.ircclient import IRCClient

Connect = Callable[..., IRCClient]
S = ":fastchat.local"


def watcher(connect: Connect, nick: str) -> IRCClient:
    """A registered client, past the burst of its autojoin."""
    c = connect(nick)
    c.sync()
    return c


def arriving_elsewhere(
    server: process.ServerProcess, connect: Connect, than: IRCClient
) -> IRCClient:
    """A connection, not registered yet, on another worker than ``than`` (at one worker, the
    only one). The kernel spreads connections over the workers: connect until one lands
    elsewhere (a PING's answer says the worker has accepted it)."""
    avoid = server.worker_of(than.sock.getsockname()[1]) if server.workers > 1 else None
    for _ in range(64):
        client = connect(register=False)
        client.send("PING hello")
        client.expect(r"hello")
        if avoid is None or server.worker_of(client.sock.getsockname()[1]) != avoid:
            return client
        client.close()
    raise AssertionError("every connection landed on the watcher's worker")


def test_sign_on_nick_change_and_quit_elsewhere(
    server: process.ServerProcess, connect: Connect
) -> None:
    """731 for targets offline when added; 730 ``nick!user@host`` addressed to ``*`` when one
    signs on on another worker; a nick change is the old nick offline and the new online;
    a quit, offline. L and S answer from the same list."""
    ann = watcher(connect, "monann")
    ann.send("MONITOR + monbob,MonCy")
    assert ann.replies() == [f"{S} 731 monann :monbob,MonCy"]
    bob = arriving_elsewhere(server, connect, ann)
    bob.register("monbob")
    assert ann.replies() == [f"{S} 730 * :monbob!~monbob@127.0.0.1"]
    ann.send("MONITOR L")
    ann.send("MONITOR S")
    assert ann.replies() == [
        f"{S} 732 monann :monbob,MonCy",
        f"{S} 733 monann :End of MONITOR list",
        f"{S} 730 monann :monbob!~monbob@127.0.0.1",
        f"{S} 731 monann :MonCy",
    ]
    bob.send("NICK moncy")
    bob.expect(r"^:monbob!\S+ NICK :?moncy$")
    assert ann.replies() == [
        f"{S} 731 * :monbob",
        f"{S} 730 * :moncy!~monbob@127.0.0.1",
    ]
    bob.send("QUIT :bye")
    bob.wait_closed()
    assert ann.replies() == [f"{S} 731 * :moncy"]
    ann.send("MONITOR - moncy")
    ann.send("MONITOR C")
    ann.send("MONITOR L")
    assert ann.replies() == [f"{S} 733 monann :End of MONITOR list"]


def test_the_answer_sees_a_sign_on_just_acknowledged_elsewhere(
    server: process.ServerProcess, connect: Connect
) -> None:
    """As soon as a user has its 001 on one worker, ``MONITOR +`` on another reports it
    online (the read barrier), and once it has read its ERROR, offline. A few rounds, each
    with a watcher of its own (so that flood control never delays one)."""
    for round_ in range(3):
        ann = watcher(connect, f"monwatch{round_}")
        nick = f"monnew{round_}"
        new = arriving_elsewhere(server, connect, ann)
        new.register(nick)
        ann.send(f"MONITOR + {nick}")
        assert ann.replies() == [f"{S} 730 {ann.nick} :{nick}!~{nick}@127.0.0.1"]
        ann.send("MONITOR C")
        assert ann.replies() == []
        new.send("QUIT")
        new.wait_closed()
        ann.send(f"MONITOR + {nick}")
        assert ann.replies() == [f"{S} 731 {ann.nick} :{nick}"]


def test_bad_input(connect: Connect) -> None:
    """Over the limit (``MONITOR=100``): 734 with the limit and the targets that could not be
    added, as sent; invalid nicks are ignored without a reply; a list that does not fit one
    line is answered in several, each within 512 bytes; no modifier, 461; an unknown one, 400."""
    ann = watcher(connect, "monfull")
    ann.send("MONITOR")
    ann.send("MONITOR +")
    ann.send("MONITOR ? x")
    ann.send("MONITOR + *!*@*,#chan")
    assert ann.replies() == [
        f"{S} 461 monfull MONITOR :Not enough parameters",
        f"{S} 461 monfull MONITOR :Not enough parameters",
        f"{S} 400 monfull MONITOR ? :Unknown subcommand",
    ]
    # 27 nicks of 17 bytes: a line a client may send, an answer that needs two
    first = [f"mon{i:03d}abcdefghijk" for i in range(27)]
    ann.send("MONITOR + " + ",".join(first))
    got = ann.replies()
    assert [line.split(" :", 1)[0] for line in got] == [f"{S} 731 monfull"] * 2
    assert ",".join(line.split(" :", 1)[1] for line in got).split(",") == first
    assert all(len(line) + 2 <= 512 for line in got)
    rest = [f"m{i:03d}" for i in range(27, 101)]
    ann.send("MONITOR + " + ",".join(rest[:72]))
    ann.send("MONITOR + " + ",".join(rest[72:]) + ",*bad,m999")
    got = ann.replies()
    assert got[1:] == [
        f"{S} 734 monfull 100 m100,*bad,m999 :Monitor list is full.",
        f"{S} 731 monfull :m099",
    ]
