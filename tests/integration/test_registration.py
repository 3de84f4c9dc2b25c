"""Connection registration (RFC 2812 §3.1, Modern IRC "Connection Registration"), against the
real server with one and with four workers."""

from __future__ import annotations

import re

from tests.ircclient import IRCClient


def test_welcome_burst_and_autojoin(connect) -> None:
    """Modern IRC: "Upon successful completion of the registration process, the server MUST send
    ... RPL_WELCOME (001), RPL_YOURHOST (002), RPL_CREATED (003), RPL_MYINFO (004), and at least
    one RPL_ISUPPORT (005) numeric ... [then] LUSERS ... and MOTD"."""
    c = connect("alice", register=False)
    c.send("NICK alice")
    c.send("USER alice 0 * :Alice A")
    lines = c.expect_until(r" 366 alice #lobby ")
    codes = [line.split()[1] for line in lines]
    for code in ["001", "002", "003", "004", "005", "251", "375", "372", "376"]:
        assert code in codes, (code, lines)
    assert codes.index("001") < codes.index("005") < codes.index("376")
    isupport = " ".join(line for line in lines if " 005 " in line)
    for token in [
        "CASEMAPPING=rfc1459",
        "CHANTYPES=#&",
        "NICKLEN=30",
        "CHANNELLEN=50",
        "TOPICLEN=390",
        "PREFIX=(ov)@+",
        "CHANMODES=beI,k,l,CDimnst",
        "EXCEPTS=e",
        "INVEX=I",
        "EXTBAN=,am",
        "ACCOUNTEXTBAN=a",
        "MAXLIST=beI:100",
        "NETWORK=fastchat",
    ]:
        assert token in isupport
    assert any(re.search(r":alice!~alice@\S+ JOIN #lobby$", line) for line in lines)


def test_commands_before_registration_get_451(connect) -> None:
    """Modern IRC: ERR_NOTREGISTERED (451) "Returned when a client command cannot be parsed
    as they are not yet registered"."""
    c = connect()
    c.send("JOIN #x")
    c.expect(r" 451 \* :You have not registered")
    c.send("PRIVMSG #lobby :hi")
    c.expect(r" 451 ")
    c.send("PING tok")
    c.expect(r"PONG \S+ :tok")


def test_nick_errors(connect) -> None:
    """RFC 2812 §3.1.2: 431 ERR_NONICKNAMEGIVEN, 432 ERR_ERRONEUSNICKNAME, 433 ERR_NICKNAMEINUSE."""
    connect("taken")
    c = connect()
    c.send("NICK")
    c.expect(r" 431 \* :No nickname given")
    c.send("NICK 9lives")
    c.expect(r" 432 \* 9lives :Erroneous nickname")
    c.send("NICK " + "n" * 31)
    c.expect(r" 432 ")
    c.send("NICK TAKEN")  # rfc1459 case mapping: TAKEN is taken
    c.expect(r" 433 \* TAKEN :Nickname is already in use")
    c.send("NICK ta[k]en")
    c.send("USER x 0 * :x")
    c.expect(r" 001 ta\[k\]en ")


def test_casemapping_brackets(connect) -> None:
    """CASEMAPPING=rfc1459: "[]\\~" are the upper-case forms of "{}|^"."""
    connect("a{b}")
    c = connect()
    c.send("NICK A[B]")
    c.expect(r" 433 \* A\[B\] ")


def test_user_needs_params_and_reregister(connect) -> None:
    """RFC 2812 §3.1.3: 461 ERR_NEEDMOREPARAMS; 462 ERR_ALREADYREGISTRED after registration."""
    c = connect()
    c.send("USER onlyone")
    c.expect(r" 461 \* USER :Not enough parameters")
    c2 = connect("reg")
    c2.send("USER again 0 * :x")
    c2.expect(r" 462 reg :You may not reregister")


def test_user_with_empty_realname_or_username(connect) -> None:
    """Modern IRC, USER: "If the client sends a USER command [...] with an empty <realname> or
    <username>, ERR_NEEDMOREPARAMS (461)"; a username with no character the server keeps is
    ERR_INVALIDUSERNAME (468), as Ergo answers it; the connection may then try again."""
    c = connect()
    c.send("NICK emptyreal")
    c.send("USER a 0 * :")
    c.expect(r" 461 emptyreal USER :Not enough parameters$")
    c.send("USER !!! 0 * :Real Name")
    c.expect(r" 468 emptyreal :Your username is not valid$")
    c.send("USER a 0 * :Real Name")
    c.expect(r" 001 emptyreal ")
    c.nick = "emptyreal"


def test_cap_negotiation_holds_registration(connect) -> None:
    """IRCv3 capability negotiation: "the server MUST NOT complete registration until the
    client sends CAP END", whether a request is refused (NAK: all or nothing) or
    acknowledged."""
    c = connect()
    c.send("CAP LS 302")
    c.expect(r"CAP \* LS :")  # the last line of the answer
    c.send("NICK capper")
    c.send("USER capper 0 * :x")
    c.send("CAP REQ :multi-prefix example/unknown")
    c.expect(r"CAP \S+ NAK :multi-prefix example/unknown$")
    c.send("CAP REQ :multi-prefix")
    c.expect(r"CAP \S+ ACK :multi-prefix$")
    assert not any(" 001 " in line for line in c.sync())
    c.send("CAP END")
    c.expect(r" 001 capper ")


def test_quit_sends_error_and_others_see_quit(connect) -> None:
    """RFC 2812 §3.1.7: "The server acknowledges this by sending an ERROR message to the
    client"; channel members see the QUIT."""
    a = connect("quitter")
    b = connect("watcher")
    b.sync()
    a.send("QUIT :gone fishing")
    a.expect(r"^ERROR :")
    a.wait_closed()
    b.expect(r":quitter!\S+ QUIT :Quit: gone fishing")


def test_dropped_socket_is_seen_as_quit(connect) -> None:
    a = connect("dropper")
    b = connect("seer")
    b.sync()
    a.close()
    b.expect(r":dropper!\S+ QUIT :")


def test_unknown_command(connect) -> None:
    c = connect("unk")
    c.send("FROBNICATE x")
    c.expect(r" 421 unk FROBNICATE :Unknown command")


def test_password(tmp_path) -> None:
    """RFC 2812 §3.1.1 PASS; 464 ERR_PASSWDMISMATCH and a disconnect for a wrong one."""
    from fastchat.server.runtime import process

    with process.running(["--password", "sesame"], workers=1) as srv:
        with IRCClient(srv.host, srv.port) as bad:
            bad.send("PASS wrong")
            bad.send("NICK bad")
            bad.send("USER bad 0 * :x")
            bad.expect(r" 464 ")
            bad.expect(r"^ERROR ")
            bad.wait_closed()
        with IRCClient(srv.host, srv.port) as good:
            good.send("PASS sesame")
            good.register("good")
