"""The client's sans-I/O session: server lines become display events, typed input becomes IRC lines.

Owns: everything a chat client knows about IRC: registration (RFC 2812 §3.1, with another nick
on ERR_NICKNAMEINUSE, after IRCv3 capability negotiation: :mod:`fastchat.client.capabilities`),
PING/PONG (§3.7.2/§3.7.3), the windows (the server window, joined channels, private queries)
with their scrollback, topics, member lists and members' prefixes, the typed commands (/join,
/msg, ...), re-joining channels after a reconnect, and what the negotiated capabilities change:
``server-time`` stamps (every line's tags are parsed, unknown ones ignored), no local echo under
``echo-message`` (the server's echo is shown instead), every prefix under ``multi-prefix``, and
``AWAY`` lines under ``away-notify``.
Must never: import curses, socket, selectors, os or time. The caller passes the time in (a wall
clock float, used for time stamps and keepalive) and carries out the returned :class:`Effects`:
lines to send, events to show, whether to quit or drop the link.

Every public method returns an :class:`Effects`; the events in it are also stored in their
window, so the curses view draws from :attr:`Session.windows` while the plain line mode just
prints :attr:`Effects.events` as they come.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from fastchat.client.capabilities import CapNegotiation, CapResult, maybe_server_time
from fastchat.client.text import decode, sanitize, split_utf8
from fastchat.irc import numerics as N
from fastchat.irc.casemap import fold, is_channel
from fastchat.irc.message import MAX_LINE, Message, ProtocolError, line, parse, parse_tags

#: Scrollback kept per window.
SCROLLBACK = 2000
#: Send our own PING after this long without hearing from the server...
KEEPALIVE_IDLE = 90.0
#: ...and give the link up when no reply came within this long.
KEEPALIVE_TIMEOUT = 45.0
#: Room left in a 512-byte line for ``:nick!user@host`` that the server prepends when it
#: relays our PRIVMSG; the host part is unknown to us, so assume a long one.
_RELAY_SOURCE_ROOM = 100
_CTCP = b"\x01"


class ConnState(enum.Enum):
    """The link as the person sees it on the status line."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    REGISTERING = "registering"
    CONNECTED = "connected"
    LOST = "lost"


class Transport(enum.Enum):
    """How the link to the server is protected (``fastchat client --tls``, ``--insecure``)."""

    PLAIN = ""
    TLS = "TLS"
    TLS_UNVERIFIED = "TLS UNVERIFIED"


#: Said at every connection made with ``--insecure``: on screen, not only in the docs
INSECURE_WARNING = (
    "WARNING: --insecure: the server's certificate is NOT verified. Anyone between you and "
    "the server can read and change this conversation, passwords included."
)


class Kind(enum.Enum):
    """What an event is, which decides how it looks."""

    MESSAGE = "message"
    ACTION = "action"
    NOTICE = "notice"
    JOIN = "join"
    PART = "part"
    QUIT = "quit"
    NICK = "nick"
    TOPIC = "topic"
    INFO = "info"
    AWAY = "away"
    ERROR = "error"


class WindowKind(enum.Enum):
    SERVER = "server"
    CHANNEL = "channel"
    QUERY = "query"


@dataclass(frozen=True, slots=True)
class Event:
    """One line of the message pane. ``nick`` is set for messages, actions and notices."""

    time: float
    window: str
    kind: Kind
    text: str
    nick: str = ""
    own: bool = False
    highlight: bool = False


def describe(event: Event) -> str:
    """The event as one line of text, without its time stamp.

    >>> describe(Event(0.0, "#a", Kind.MESSAGE, "hi", nick="ada"))
    '<ada> hi'
    >>> describe(Event(0.0, "#a", Kind.JOIN, "bob has joined #a"))
    '--> bob has joined #a'
    >>> describe(Event(0.0, "#a", Kind.AWAY, "alice is away: lunch"))
    '* alice is away: lunch'
    """
    if event.kind is Kind.MESSAGE:
        return f"<{event.nick}> {event.text}"
    if event.kind is Kind.ACTION:
        return f"* {event.nick} {event.text}"
    if event.kind is Kind.NOTICE:
        return f"-{event.nick}- {event.text}"
    marker = {
        Kind.JOIN: "-->",
        Kind.PART: "<--",
        Kind.QUIT: "<--",
        Kind.ERROR: "!!!",
        Kind.AWAY: "*",
    }
    return f"{marker.get(event.kind, '---')} {event.text}"


@dataclass
class Window:
    """A channel, a private query, or the server window (always first)."""

    name: bytes
    kind: WindowKind
    lines: deque[Event] = field(default_factory=lambda: deque(maxlen=SCROLLBACK))
    joined: bool = False
    topic: str = ""
    #: folded nick -> nick as shown, for channels (tracks JOIN/PART/QUIT/NICK/KICK, RPL_NAMREPLY)
    members: dict[bytes, str] = field(default_factory=dict)
    #: folded nick -> its channel prefixes, highest first ("@+" with multi-prefix, which lets
    #: a MODE -o leave the "+" known); members without any are absent
    prefixes: dict[bytes, str] = field(default_factory=dict)
    unread: int = 0
    highlight: bool = False
    #: rows scrolled back from the bottom; view state, kept here so each window remembers it
    scroll: int = 0

    @property
    def title(self) -> str:
        return sanitize(decode(self.name))

    @property
    def key(self) -> bytes:
        return fold(self.name)


@dataclass
class Effects:
    """What the caller must do after a session call."""

    send: list[bytes] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    quit: bool = False
    #: the server stopped answering: drop the link (the caller reconnects)
    disconnect: bool = False


#: ISUPPORT PREFIX and CHANMODES until the server's 005 says otherwise (RFC 2812 ones and the
#: common extensions, so that a prefix is never mistaken for part of a nick).
_DEFAULT_PREFIX = (b"qaohv", "~&@%+")
_DEFAULT_CHANMODES = (b"beI", b"k", b"l")


def _nick_of(source: bytes | None) -> bytes:
    """``nick`` from a ``nick!user@host`` source (RFC 2812 §2.3.1 prefix)."""
    if source is None:
        return b""
    return source.partition(b"!")[0]


HELP = """\
Commands:
  text                 say text in the current channel or query (//text sends "/text")
  /join #chan [key]    join a channel           /part [#chan] [reason]  leave it (or close a query)
  /msg NICK text       private message (opens a query)    /query NICK  open a query
  /me action           /nick NEW    /names [#chan]    /topic [text]    /away [text]
  /win N | next | prev switch window (also Alt-1..9, Ctrl-N / Ctrl-P)    /close
  /quote LINE          send a raw IRC line      /quit [message]         /help
Keys: Left/Right Home/End Backspace/Delete, Up/Down history, Tab completes nicks,
  PgUp/PgDn scroll back, Ctrl-U/Ctrl-K/Ctrl-W kill, Ctrl-L redraw, Ctrl-C or Ctrl-D (empty line) quit."""


class Session:
    """The state of one chat session, across reconnects.

    ``channels`` are joined after each registration (after the end of the MOTD, RFC 2812
    §5.1 RPL_ENDOFMOTD / ERR_NOMOTD, by which time a server's own auto-joins have arrived).
    """

    def __init__(
        self,
        nick: str,
        server: str,
        channels: Iterable[str] = (),
        password: str | None = None,
        username: str = "fastchat",
        realname: str = "fastchat client",
        transport: Transport = Transport.PLAIN,
    ) -> None:
        #: why the session cannot go on (the caller exits non-zero and says so)
        self.fatal: str | None = None
        self.wanted_nick = nick.encode()
        self.nick = self.wanted_nick
        self.server = server
        #: how the link is protected: the status line says it, and an unverified one is
        #: announced at every connection
        self.transport = transport
        self.password = password.encode() if password is not None else None
        self.username = username.encode()
        self.realname = realname.encode()
        self.state = ConnState.DISCONNECTED
        self.state_detail = ""
        self.registered = False
        self.away = False
        self.windows: list[Window] = [Window(b"", WindowKind.SERVER)]
        self.current = 0
        self._autojoin: list[bytes] = [c.encode() for c in channels]
        self._autojoin_done = False
        self._focus_on_join: set[bytes] = {fold(c) for c in self._autojoin}
        self._names: dict[bytes, dict[bytes, str]] = {}  # RPL_NAMREPLY being collected
        self.caps = CapNegotiation()
        #: ISUPPORT PREFIX: the channel modes that give a prefix, and their prefixes, highest
        #: first; CHANMODES types A, B and C (the modes that take a parameter, C only when set)
        self._prefix_modes, self._prefix_chars = _DEFAULT_PREFIX
        self._list_modes, self._param_modes, self._set_param_modes = _DEFAULT_CHANMODES
        self._last_heard = 0.0
        self._ping_sent: float | None = None

    # -- windows ------------------------------------------------------------------------------

    @property
    def window(self) -> Window:
        return self.windows[self.current]

    def find(self, name: bytes) -> Window | None:
        key = fold(name)
        for w in self.windows:
            if w.kind is not WindowKind.SERVER and w.key == key:
                return w
        return None

    def _open(self, name: bytes, kind: WindowKind) -> Window:
        w = self.find(name)
        if w is None:
            w = Window(name, kind)
            self.windows.append(w)
        return w

    def _close(self, window: Window) -> None:
        index = self.windows.index(window)
        if index == 0:
            return
        del self.windows[index]
        if self.current >= index:
            self.current = max(self.current - 1, 0)

    def select(self, index: int) -> None:
        """Make window ``index`` (0-based) current, clearing its activity marks."""
        if 0 <= index < len(self.windows):
            self.current = index
            self.window.unread = 0
            self.window.highlight = False

    def _focus(self, window: Window) -> None:
        self.select(self.windows.index(window))

    @property
    def target(self) -> bytes | None:
        """Where plain text goes: the current channel (if joined) or query."""
        w = self.window
        if w.kind is WindowKind.QUERY or (w.kind is WindowKind.CHANNEL and w.joined):
            return w.name
        return None

    @property
    def ready(self) -> bool:
        """Registered, and every channel asked for at start-up is joined (or refused)."""
        return self.registered and self._autojoin_done and not self._focus_on_join

    def status(self) -> str:
        """The status line: server, own nick, current window, connection state, activity."""
        return " | ".join(self.status_parts())

    def status_parts(self) -> list[str]:
        """The pieces of :meth:`status`; a narrow view may drop the first (the server)."""
        w = self.window
        where = f"{self.current + 1}:{w.title or self.server}"
        server = self.server
        if self.transport is not Transport.PLAIN:
            server += f" ({self.transport.value})"
        if w.kind is WindowKind.CHANNEL:
            where += f" ({len(w.members)})" if w.joined else " (not joined)"
        elif w.kind is WindowKind.QUERY:
            where += " (query)"
        state = self.state.value + (f": {self.state_detail}" if self.state_detail else "")
        parts = [server, decode(self.nick) + (" (away)" if self.away else ""), where, state]
        active = [
            f"{i + 1}{'!' if w.highlight else ''}"
            for i, w in enumerate(self.windows)
            if w.unread and i != self.current
        ]
        if active:
            parts.append("act: " + ",".join(active))
        return parts

    def _event(
        self,
        fx: Effects,
        window: Window,
        kind: Kind,
        text: str,
        now: float,
        nick: str = "",
        own: bool = False,
        highlight: bool = False,
    ) -> None:
        event = Event(now, window.title, kind, sanitize(text), sanitize(nick), own, highlight)
        window.lines.append(event)
        if window is not self.window and kind in (Kind.MESSAGE, Kind.ACTION, Kind.NOTICE):
            window.unread += 1
            window.highlight = window.highlight or highlight or window.kind is WindowKind.QUERY
        if window.scroll:  # keep a scrolled-back view still while lines arrive below it
            window.scroll += 1
        fx.events.append(event)

    def _info(self, fx: Effects, text: str, now: float, window: Window | None = None) -> None:
        self._event(fx, window or self.windows[0], Kind.INFO, text, now)

    def _error(self, fx: Effects, text: str, now: float, window: Window | None = None) -> None:
        self._event(fx, window or self.window, Kind.ERROR, text, now)

    # -- the link -----------------------------------------------------------------------------

    def connecting(self, now: float, address: str) -> Effects:
        """The caller started connecting to ``address``."""
        fx = Effects()
        self.state, self.state_detail = ConnState.CONNECTING, ""
        self._info(fx, f"Connecting to {address}...", now)
        return fx

    def connected(self, now: float) -> Effects:
        """The TCP connection is up: register (RFC 2812 §3.1: PASS, then NICK and USER)."""
        fx = Effects()
        self.state, self.state_detail = ConnState.REGISTERING, ""
        self.registered = False
        self._autojoin_done = False
        self.nick = self.wanted_nick
        self._last_heard, self._ping_sent = now, None
        self._prefix_modes, self._prefix_chars = _DEFAULT_PREFIX
        self._list_modes, self._param_modes, self._set_param_modes = _DEFAULT_CHANMODES
        if self.transport is Transport.TLS_UNVERIFIED:
            self._error(fx, INSECURE_WARNING, now, self.windows[0])
        secured = {Transport.TLS: " over TLS", Transport.TLS_UNVERIFIED: " over unverified TLS"}
        self._info(fx, f"Connected{secured.get(self.transport, '')}; registering...", now)
        # IRCv3 capability negotiation: CAP LS 302 first, so that a server with CAP holds
        # registration until CAP END; one without it answers 421 or just registers us.
        fx.send += self.caps.start(now)
        if self.password is not None:
            fx.send.append(line(self.password, command=b"PASS"))
        fx.send.append(line(self.nick, command=b"NICK"))
        fx.send.append(line(self.username, b"0", b"*", self.realname, command=b"USER"))
        return fx

    def lost(self, now: float, reason: str, retry_in: float | None) -> Effects:
        """The connection is gone; ``retry_in`` seconds until the caller tries again."""
        fx = Effects()
        was_registered = self.registered
        was_connected = self.state in (ConnState.REGISTERING, ConnState.CONNECTED)
        self.registered = False
        self.state = ConnState.LOST
        self.state_detail = f"retrying in {retry_in:.0f}s" if retry_in is not None else ""
        if was_registered and self._autojoin_done:
            # Re-join what was joined, in window order, and keep each window's scrollback.
            # (Lost before the end of the MOTD: the start-up channels are still to be joined.)
            self._autojoin = [
                w.name for w in self.windows if w.kind is WindowKind.CHANNEL and w.joined
            ]
            self._focus_on_join = set()
        for w in self.windows:
            w.joined = False
            w.members.clear()
            w.prefixes.clear()
        text = f"Connection lost: {reason}" if reason else "Connection lost"
        if retry_in is not None:
            text += f"; reconnecting in {retry_in:.1f}s"
        # The first loss is news in every channel; each failed retry only in the server window.
        announce = self.windows if was_connected else self.windows[:1]
        for w in announce:
            if w.kind is not WindowKind.QUERY:
                self._event(fx, w, Kind.ERROR, text, now)
        return fx

    def refused(self, now: float, reason: str) -> Effects:
        """The server's TLS certificate could not be verified: trying again cannot help;
        say what would (and stop)."""
        fx = Effects()
        self.state, self.state_detail = ConnState.LOST, "certificate not verified"
        self.fatal = (
            f"cannot verify the server's TLS certificate ({reason}). If you trust it, "
            "use --tls-ca FILE to trust its certificate (a self-signed fastchat server keeps "
            "it in its data directory: tls-cert.pem), or --insecure to skip verification"
        )
        self._error(fx, self.fatal, now, self.windows[0])
        fx.quit = True
        return fx

    def waiting(self, retry_in: float) -> None:
        """Refresh the countdown on the status line while waiting to reconnect."""
        if self.state is ConnState.LOST:
            self.state_detail = f"retrying in {max(retry_in, 0.0):.0f}s"

    def tick(self, now: float) -> Effects:
        """Keepalive: PING an idle server, and drop a link that stopped answering; end a CAP
        negotiation the server never answered."""
        fx = Effects()
        if self.state not in (ConnState.REGISTERING, ConnState.CONNECTED):
            return fx
        self._cap_effects(self.caps.tick(now), now, fx)
        if self._ping_sent is not None:
            if now - self._ping_sent > KEEPALIVE_TIMEOUT:
                self._ping_sent = None
                fx.disconnect = True
        elif now - self._last_heard > KEEPALIVE_IDLE:
            self._ping_sent = now
            fx.send.append(line(b"fastchat-keepalive", command=b"PING"))
        return fx

    # -- lines from the server ----------------------------------------------------------------

    def receive(self, raw: bytes, now: float) -> Effects:
        """Handle one line from the server (CR LF already removed)."""
        fx = Effects()
        self._last_heard, self._ping_sent = now, None
        try:
            msg = parse(raw)
        except ProtocolError as exc:
            self._error(
                fx, f"Unparsable line from server ({exc}): {decode(raw)}", now, self.windows[0]
            )
            return fx
        at = now
        if msg.tags is not None:
            # IRCv3 message-tags: every tag is parsed, and those we do not know are ignored.
            # server-time: the server's stamp, when it sent one, dates what this line shows.
            stamp = parse_tags(msg.tags).get(b"time")
            if stamp is not None:
                at = maybe_server_time(stamp) or now
        handler = _HANDLERS.get(msg.command)
        if handler is not None:
            handler(self, msg, at, fx)
        elif msg.command.isdigit():
            self._on_numeric(msg, at, fx)
        else:
            params = " ".join(decode(p) for p in msg.params)
            self._info(fx, f"{decode(msg.command)} {params}", at)
        return fx

    def _cap_effects(self, result: CapResult, now: float, fx: Effects) -> None:
        fx.send += result.send
        for note in result.notes:
            self._info(fx, note, now)

    def _on_cap(self, msg: Message, now: float, fx: Effects) -> None:
        """IRCv3 CAP (LS, ACK, NAK, NEW, DEL, LIST): see :mod:`fastchat.client.capabilities`."""
        self._cap_effects(self.caps.receive(msg), now, fx)

    def _on_unknown_command(self, msg: Message, now: float, fx: Effects) -> None:
        """ERR_UNKNOWNCOMMAND (421), ERR_NOTREGISTERED (451): about CAP, the server has no
        capability negotiation (and registers us on NICK and USER); otherwise an error."""
        if msg.param(1).upper() == b"CAP" and self.caps.negotiating:
            self._cap_effects(self.caps.unsupported(), now, fx)
        else:
            self._on_numeric(msg, now, fx)

    def _on_tagmsg(self, msg: Message, now: float, fx: Effects) -> None:
        """IRCv3 TAGMSG (message-tags): only tags, such as typing notices; nothing to show."""

    def _on_isupport(self, msg: Message, now: float, fx: Effects) -> None:
        """RPL_ISUPPORT (005): PREFIX and CHANMODES say which prefixes and mode parameters
        to expect (Modern IRC, "Feature Advertisement"); the line is shown like any other."""
        for token in msg.params[1:-1]:
            key, _, value = token.partition(b"=")
            if key == b"PREFIX" and value.startswith(b"("):
                modes, _, chars = value[1:].partition(b")")
                if len(modes) == len(chars):
                    self._prefix_modes, self._prefix_chars = modes, decode(chars)
            elif key == b"CHANMODES":
                types = value.split(b",")
                if len(types) >= 3:
                    self._list_modes, self._param_modes, self._set_param_modes = types[:3]
        self._on_numeric(msg, now, fx)

    def _is_me(self, nick: bytes) -> bool:
        return fold(nick) == fold(self.nick)

    def _on_ping(self, msg: Message, now: float, fx: Effects) -> None:
        """RFC 2812 §3.7.2: answer PING with a PONG carrying the same parameter."""
        fx.send.append(line(*msg.params[:1], command=b"PONG"))

    def _on_pong(self, msg: Message, now: float, fx: Effects) -> None:
        """RFC 2812 §3.7.3: a reply to our keepalive; hearing it was the point."""

    def _on_welcome(self, msg: Message, now: float, fx: Effects) -> None:
        """RFC 2812 §5.1 RPL_WELCOME: registered; the first parameter is our nick."""
        self.registered = True
        self.caps.welcomed()
        self.state, self.state_detail = ConnState.CONNECTED, ""
        self.nick = msg.param(0, self.nick)
        self._info(fx, decode(msg.param(1)), now)

    def _on_end_of_motd(self, msg: Message, now: float, fx: Effects) -> None:
        """RPL_ENDOFMOTD / ERR_NOMOTD end the welcome burst: join the channels now."""
        self._info(fx, decode(msg.params[-1]) if msg.params else "", now)
        if self._autojoin_done:
            return
        self._autojoin_done = True
        wanted = [c for c in self._autojoin if not (w := self.find(c)) or not w.joined]
        if wanted:
            fx.send.append(line(b",".join(wanted), command=b"JOIN"))
            self._info(fx, "Joining " + ", ".join(decode(c) for c in wanted), now)

    def _on_nick_in_use(self, msg: Message, now: float, fx: Effects) -> None:
        """ERR_NICKNAMEINUSE: during registration, try the nick with ``_`` appended."""
        if self.registered:
            self._on_numeric(msg, now, fx)
            return
        taken = msg.param(1, self.nick)
        self.nick = taken + b"_"
        self._info(fx, f"Nick {decode(taken)} is taken; trying {decode(self.nick)}", now)
        fx.send.append(line(self.nick, command=b"NICK"))

    def _on_erroneous_nick(self, msg: Message, now: float, fx: Effects) -> None:
        """ERR_ERRONEUSNICKNAME: during registration, fall back to a nick every server takes."""
        if self.registered or self.nick.startswith(b"guest"):
            self._on_numeric(msg, now, fx)
            return
        self._info(fx, f"Nick {decode(self.nick)} is not allowed here; trying guest", now)
        self.nick = b"guest"
        fx.send.append(line(self.nick, command=b"NICK"))

    def _on_password_mismatch(self, msg: Message, now: float, fx: Effects) -> None:
        """ERR_PASSWDMISMATCH (464): retrying with the same password cannot help; stop."""
        self.fatal = "the server refused the password (check --password)"
        self._error(fx, self.fatal, now, self.windows[0])
        fx.quit = True

    def _on_privmsg(self, msg: Message, now: float, fx: Effects) -> None:
        """RFC 2812 §3.3.1 PRIVMSG and §3.3.2 NOTICE, including CTCP ACTION (/me)."""
        if len(msg.params) < 2:
            return
        sender, target, body = _nick_of(msg.source), msg.params[0], msg.params[1]
        notice = msg.command == b"NOTICE"
        kind = Kind.NOTICE if notice else Kind.MESSAGE
        # Our own line, back from the server (IRCv3 echo-message): shown where we said it,
        # in place of the local echo that _say left out.
        own = bool(sender) and self._is_me(sender) and b"!" in (msg.source or b"")
        if body.startswith(_CTCP):
            ctcp, _, arg = body.strip(_CTCP).partition(b" ")
            ctcp = ctcp.upper()
            if ctcp == b"ACTION" and not notice:
                kind, body = Kind.ACTION, arg
            elif own:
                return  # the echo of a CTCP request or reply we sent: nothing to show
            elif notice:
                body = b"CTCP reply " + ctcp + b" " + arg
            else:
                self._on_ctcp_request(sender, ctcp, arg, now, fx)
                return
        text = decode(body)
        if own:
            window = self.find(target)
            if window is None and not is_channel(target):
                window = self._open(target, WindowKind.QUERY)
            if window is None:  # a channel we are not in (/msg #other text)
                info = f"-> {decode(target)}: {text}"
                self._event(fx, self.window, Kind.INFO, info, now, own=True)
            else:
                self._event(fx, window, kind, text, now, nick=decode(sender), own=True)
            return
        if is_channel(target):
            window = self.find(target) or self.window
        elif not sender or (b"." in sender and b"!" not in (msg.source or b"")):
            window = self.windows[0]  # from the server itself
        elif notice:
            window = self.find(sender) or self.window
        else:
            window = self._open(sender, WindowKind.QUERY)
        hl = bool(self.nick) and fold(self.nick) in fold(body) and is_channel(target)
        self._event(fx, window, kind, text, now, nick=decode(sender or b"*"), highlight=hl)

    def _on_ctcp_request(
        self, sender: bytes, ctcp: bytes, arg: bytes, now: float, fx: Effects
    ) -> None:
        """CTCP requests: answer VERSION and PING with a NOTICE, mention the rest."""
        if ctcp == b"VERSION":
            reply = b"VERSION fastchat"
        elif ctcp == b"PING":
            reply = b"PING " + arg
        else:
            reply = b""
        if reply and sender:
            fx.send.append(line(sender, _CTCP + reply + _CTCP, command=b"NOTICE"))
        self._info(fx, f"CTCP {decode(ctcp)} from {decode(sender)}", now, self.window)

    def _on_join(self, msg: Message, now: float, fx: Effects) -> None:
        """RFC 2812 §3.2.1 JOIN: ours opens (and maybe focuses) a window."""
        sender = _nick_of(msg.source)
        for chan in msg.param(0).split(b","):
            if not chan:
                continue
            if self._is_me(sender):
                w = self._open(chan, WindowKind.CHANNEL)
                w.name, w.joined = chan, True
                if fold(chan) in self._focus_on_join or self.current == 0:
                    self._focus_on_join.discard(fold(chan))
                    self._focus(w)
            else:
                maybe = self.find(chan)
                if maybe is None:
                    continue
                w = maybe
            w.members[fold(sender)] = decode(sender)
            w.prefixes.pop(fold(sender), None)
            self._event(fx, w, Kind.JOIN, f"{decode(sender)} has joined {w.title}", now)

    def _on_part(self, msg: Message, now: float, fx: Effects) -> None:
        """RFC 2812 §3.2.2 PART: ours closes the window."""
        sender = _nick_of(msg.source)
        reason = f" ({decode(msg.param(1))})" if msg.param(1) else ""
        for chan in msg.param(0).split(b","):
            w = self.find(chan)
            if w is None:
                continue
            if self._is_me(sender):
                w.joined = False
                self._close(w)
                self._info(fx, f"You have left {w.title}{reason}", now)
            else:
                w.members.pop(fold(sender), None)
                w.prefixes.pop(fold(sender), None)
                text = f"{decode(sender)} has left {w.title}{reason}"
                self._event(fx, w, Kind.PART, text, now)

    def _on_kick(self, msg: Message, now: float, fx: Effects) -> None:
        """RFC 2812 §3.2.8 KICK."""
        w = self.find(msg.param(0))
        victim = msg.param(1)
        if w is None:
            return
        w.members.pop(fold(victim), None)
        w.prefixes.pop(fold(victim), None)
        if self._is_me(victim):
            w.joined = False
        who = "You have" if self._is_me(victim) else f"{decode(victim)} has"
        text = f"{who} been kicked from {w.title} by {decode(_nick_of(msg.source))}"
        if msg.param(2):
            text += f" ({decode(msg.param(2))})"
        self._event(fx, w, Kind.PART, text, now)

    def _on_quit(self, msg: Message, now: float, fx: Effects) -> None:
        """RFC 2812 §3.1.7 QUIT: shown in every window the user was visible in."""
        sender = _nick_of(msg.source)
        text = f"{decode(sender)} has quit"
        if msg.param(0):
            text += f" ({decode(msg.param(0))})"
        for w in self.windows:
            if fold(sender) in w.members or (w.kind is WindowKind.QUERY and w.key == fold(sender)):
                w.members.pop(fold(sender), None)
                w.prefixes.pop(fold(sender), None)
                self._event(fx, w, Kind.QUIT, text, now)

    def _on_nick(self, msg: Message, now: float, fx: Effects) -> None:
        """RFC 2812 §3.1.2 NICK: a rename, ours or someone else's."""
        old, new = _nick_of(msg.source), msg.param(0)
        if not new:
            return
        mine = self._is_me(old)
        if mine:
            self.nick = new
            if self.registered:
                self.wanted_nick = new
        text = f"{'You are' if mine else decode(old) + ' is'} now known as {decode(new)}"
        for w in self.windows:
            query = w.kind is WindowKind.QUERY and w.key == fold(old)
            if fold(old) in w.members or query or (mine and w.kind is WindowKind.SERVER):
                if fold(old) in w.members:
                    del w.members[fold(old)]
                    w.members[fold(new)] = decode(new)
                    if fold(old) in w.prefixes:
                        w.prefixes[fold(new)] = w.prefixes.pop(fold(old))
                if query:
                    w.name = new
                self._event(fx, w, Kind.NICK, text, now)

    def _on_topic(self, msg: Message, now: float, fx: Effects) -> None:
        """RFC 2812 §3.2.4 TOPIC: someone changed it."""
        w = self.find(msg.param(0))
        if w is None:
            return
        w.topic = sanitize(decode(msg.param(1)))
        who = decode(_nick_of(msg.source))
        text = f"{who} changed the topic to: {w.topic}" if w.topic else f"{who} cleared the topic"
        self._event(fx, w, Kind.TOPIC, text, now)

    def _on_rpl_topic(self, msg: Message, now: float, fx: Effects) -> None:
        """RPL_TOPIC (332) and RPL_NOTOPIC (331): the topic on join or on /topic."""
        chan = msg.param(1)
        w = self.find(chan) or self.window
        if msg.command == N.RPL_TOPIC:
            topic = sanitize(decode(msg.param(2)))
            if w.kind is WindowKind.CHANNEL and w.key == fold(chan):
                w.topic = topic
            self._event(fx, w, Kind.TOPIC, f"Topic for {decode(chan)}: {topic}", now)
        else:
            self._event(fx, w, Kind.TOPIC, f"No topic is set for {decode(chan)}", now)

    def _split_prefixes(self, entry: str) -> tuple[str, str]:
        """``"@+bob"`` -> ``("@+", "bob")``: every leading prefix of ISUPPORT PREFIX (IRCv3
        multi-prefix sends them all, highest first; without it there is at most one), and
        ``nick!user@host`` cut to the nick (userhost-in-names)."""
        nick = entry.lstrip(self._prefix_chars)
        return entry[: len(entry) - len(nick)], nick.partition("!")[0]

    def _ranked(self, prefixes: str) -> str:
        """``prefixes`` without duplicates, highest first (the order of ISUPPORT PREFIX)."""
        return "".join(c for c in self._prefix_chars if c in prefixes)

    def nicklist(self, window: Window) -> list[str]:
        """The channel's members as a nick list shows them: by their highest prefix (ops,
        then voiced, ...), then by name, each with that highest prefix."""
        order = self._prefix_chars

        def shown(key: bytes) -> tuple[int, str, str]:
            nick, prefixes = window.members[key], window.prefixes.get(key, "")
            rank = order.index(prefixes[0]) if prefixes else len(order)
            return rank, nick.lower(), prefixes[:1] + nick

        return [entry for _, _, entry in sorted(shown(key) for key in window.members)]

    def _on_namreply(self, msg: Message, now: float, fx: Effects) -> None:
        """RPL_NAMREPLY (353): ``nick = #chan :@op +voice plain``; collected until 366."""
        chan = fold(msg.param(2))
        names = self._names.setdefault(chan, {})
        for entry in msg.param(3).split():
            prefixes, nick = self._split_prefixes(decode(entry))
            if nick:
                names[fold(nick.encode())] = prefixes + nick

    def _on_endofnames(self, msg: Message, now: float, fx: Effects) -> None:
        """RPL_ENDOFNAMES (366): show the list; it replaces a joined channel's member list."""
        chan = msg.param(1)
        collected = self._names.pop(fold(chan), {})
        listed = Window(chan, WindowKind.CHANNEL)
        for key, entry in collected.items():
            prefixes, nick = self._split_prefixes(entry)
            listed.members[key] = nick
            if prefixes:
                listed.prefixes[key] = self._ranked(prefixes)
        w = self.find(chan)
        if w is not None and w.joined:
            w.members, w.prefixes = listed.members, listed.prefixes
        shown = " ".join(self.nicklist(listed))
        target = w if w is not None else self.window
        self._info(fx, f"Users on {decode(chan)} ({len(collected)}): {shown}", now, target)

    def _on_away_numeric(self, msg: Message, now: float, fx: Effects) -> None:
        """RPL_UNAWAY (305) / RPL_NOWAWAY (306), RFC 2812 §4.1 AWAY."""
        self.away = msg.command == N.RPL_NOWAWAY
        self._info(fx, decode(msg.params[-1]) if msg.params else "", now, self.window)

    def _on_rpl_away(self, msg: Message, now: float, fx: Effects) -> None:
        """RPL_AWAY (301): the person we messaged is away."""
        who = msg.param(1)
        w = self.find(who) or self.window
        self._info(fx, f"{decode(who)} is away: {decode(msg.param(2))}", now, w)

    def _on_error(self, msg: Message, now: float, fx: Effects) -> None:
        """RFC 2812 §3.7.4 ERROR: the server is closing the link."""
        self._error(fx, f"Server: {decode(msg.param(0))}", now, self.windows[0])

    def _on_mode(self, msg: Message, now: float, fx: Effects) -> None:
        """RFC 2812 §3.1.5/§3.2.3 MODE: shown where it applies; prefix modes (+o, +v...)
        change the members' prefixes."""
        target = msg.param(0)
        w = self.find(target) if is_channel(target) else self.windows[0]
        if w is not None and w.kind is WindowKind.CHANNEL:
            self._apply_prefix_modes(w, msg.param(1), msg.params[2:])
        modes = " ".join(decode(p) for p in msg.params[1:])
        text = f"{decode(_nick_of(msg.source))} sets mode {modes} on {decode(target)}"
        self._info(fx, text, now, w or self.windows[0])

    def _apply_prefix_modes(self, w: Window, modes: bytes, args: tuple[bytes, ...]) -> None:
        """Walk a channel mode string with its parameters (ISUPPORT CHANMODES: types A and B
        always take one, C only when set; PREFIX modes always) and apply the prefix ones."""
        adding = True
        args_left = list(args)
        for mode in modes:
            letter = bytes((mode,))
            if letter in b"+-":
                adding = letter == b"+"
                continue
            takes_arg = (
                letter in self._prefix_modes
                or letter in self._list_modes
                or letter in self._param_modes
                or (adding and letter in self._set_param_modes)
            )
            if not takes_arg or not args_left:
                continue
            arg = args_left.pop(0)
            index = self._prefix_modes.find(letter)
            if index < 0:
                continue
            key, char = fold(arg), self._prefix_chars[index]
            have = w.prefixes.get(key, "").replace(char, "")
            have = self._ranked(have + char) if adding else have
            if have:
                w.prefixes[key] = have
            else:
                w.prefixes.pop(key, None)

    def _on_away(self, msg: Message, now: float, fx: Effects) -> None:
        """IRCv3 away-notify: ``:nick!u@h AWAY [:reason]``, someone we share a channel with
        went away (or came back, without a reason); shown where they are."""
        sender = _nick_of(msg.source)
        if not sender or self._is_me(sender):
            return
        reason = msg.param(0)
        who = decode(sender)
        text = f"{who} is away: {decode(reason)}" if reason else f"{who} is back"
        for w in self.windows:
            if fold(sender) in w.members or (w.kind is WindowKind.QUERY and w.key == fold(sender)):
                self._event(fx, w, Kind.AWAY, text, now)

    def _on_invite(self, msg: Message, now: float, fx: Effects) -> None:
        """RFC 2812 §3.2.7 INVITE."""
        text = f"{decode(_nick_of(msg.source))} invites you to {decode(msg.param(1))}"
        self._info(fx, text, now, self.window)

    def _on_numeric(self, msg: Message, now: float, fx: Effects) -> None:
        """Any other numeric: errors (4xx/5xx) in the current window, the rest in the server's."""
        params = [decode(p) for p in msg.params[1:]]
        if msg.command[:1] in (b"4", b"5"):
            # a refused join must not hold the plain mode's start-up wait forever
            if msg.params[1:2]:
                self._focus_on_join.discard(fold(msg.params[1]))
            self._error(fx, ": ".join(params) if params else decode(msg.command), now)
        else:
            self._info(fx, " ".join(params), now)

    # -- what the person types ----------------------------------------------------------------

    def command(self, text: str, now: float) -> Effects:
        """Handle one typed line: a /command, or text for the current channel or query."""
        fx = Effects()
        if text.startswith("/") and not text.startswith("//"):
            name, _, rest = text[1:].partition(" ")
            handler = _COMMANDS.get(name.lower())
            if handler is None:
                self._error(fx, f"Unknown command /{name}; try /help", now)
            else:
                handler(self, rest.strip(), now, fx)
            return fx
        if text.startswith("//"):
            text = text[1:]
        if not text:
            return fx
        target = self.target
        if target is None:
            self._error(fx, "Not in a channel or query here; /join #channel or /msg NICK text", now)
            return fx
        self._say(target, text.encode(), now, fx)
        return fx

    def _online(self, fx: Effects, now: float) -> bool:
        if not self.registered:
            self._error(fx, "Not connected to the server yet", now)
        return self.registered

    def _say(
        self, target: bytes, body: bytes, now: float, fx: Effects, action: bool = False
    ) -> None:
        """Send a PRIVMSG (cut to fit one line each) and echo it locally, unless the server
        echoes it (IRCv3 echo-message: then its copy, in the channel's order and with the
        server's time, is what is shown)."""
        if not self._online(fx, now):
            return
        overhead = len(b"PRIVMSG  :\r\n") + len(target) + _RELAY_SOURCE_ROOM
        if action:
            overhead += len(b"\x01ACTION \x01")
        window = self.find(target)
        if window is None and not is_channel(target):
            window = self._open(target, WindowKind.QUERY)
        for piece in split_utf8(body, MAX_LINE - overhead):
            wire = b"\x01ACTION " + piece + b"\x01" if action else piece
            fx.send.append(line(target, wire, command=b"PRIVMSG"))
            if self.caps.has(b"echo-message"):
                continue
            kind = Kind.ACTION if action else Kind.MESSAGE
            if window is not None:
                self._event(fx, window, kind, decode(piece), now, nick=decode(self.nick), own=True)
            else:
                text = f"-> {decode(target)}: {decode(piece)}"
                self._event(fx, self.window, Kind.INFO, text, now, own=True)

    def _cmd_join(self, rest: str, now: float, fx: Effects) -> None:
        """/join #chan [key] (RFC 2812 §3.2.1)."""
        if not rest:
            self._error(fx, "Usage: /join #channel [key]", now)
            return
        if not self._online(fx, now):
            return
        chans, _, key = rest.partition(" ")
        names = [c if is_channel(c.encode()) else "#" + c for c in chans.split(",") if c]
        for c in names:
            self._focus_on_join.add(fold(c.encode()))
        params = [",".join(names).encode()] + ([key.strip().encode()] if key.strip() else [])
        fx.send.append(line(*params, command=b"JOIN"))

    def _cmd_part(self, rest: str, now: float, fx: Effects) -> None:
        """/part [#chan] [reason] (RFC 2812 §3.2.2); in a query, closes it."""
        w = self.window
        if rest and is_channel(rest.encode()):
            chan, _, reason = rest.partition(" ")
            target: bytes | None = chan.encode()
        else:
            reason = rest
            target = w.name if w.kind is WindowKind.CHANNEL else None
            if w.kind is WindowKind.QUERY:
                self._close(w)
                return
        if target is None:
            self._error(fx, "Usage: /part [#channel] [reason]", now)
            return
        maybe = self.find(target)
        if maybe is not None and not maybe.joined:  # e.g. after a kick: just close it
            self._close(maybe)
            return
        if self._online(fx, now):
            params = [target] + ([reason.encode()] if reason else [])
            fx.send.append(line(*params, command=b"PART"))

    def _cmd_close(self, rest: str, now: float, fx: Effects) -> None:
        """/close: leave the channel or close the query in the current window."""
        self._cmd_part("", now, fx)

    def _cmd_msg(self, rest: str, now: float, fx: Effects) -> None:
        """/msg NICK text (RFC 2812 §3.3.1): a private message; opens and shows the query."""
        target, _, body = rest.partition(" ")
        if not target or not body:
            self._error(fx, "Usage: /msg NICK text", now)
            return
        if not is_channel(target.encode()) and self.registered:
            self._focus(self._open(target.encode(), WindowKind.QUERY))
        self._say(target.encode(), body.encode(), now, fx)

    def _cmd_query(self, rest: str, now: float, fx: Effects) -> None:
        """/query NICK: open a private conversation window."""
        nick = rest.split(" ")[0] if rest else ""
        if not nick or is_channel(nick.encode()):
            self._error(fx, "Usage: /query NICK", now)
            return
        self._focus(self._open(nick.encode(), WindowKind.QUERY))

    def _cmd_me(self, rest: str, now: float, fx: Effects) -> None:
        """/me action: a CTCP ACTION to the current channel or query."""
        target = self.target
        if target is None or not rest:
            self._error(fx, "Usage: /me action (in a channel or query)", now)
            return
        self._say(target, rest.encode(), now, fx, action=True)

    def _cmd_nick(self, rest: str, now: float, fx: Effects) -> None:
        """/nick NEW (RFC 2812 §3.1.2); before registration it also becomes the wanted nick."""
        new = rest.split(" ")[0] if rest else ""
        if not new:
            self._error(fx, "Usage: /nick NEW", now)
            return
        if self.state in (ConnState.REGISTERING, ConnState.CONNECTED):
            fx.send.append(line(new.encode(), command=b"NICK"))
        if not self.registered:
            self.wanted_nick = self.nick = new.encode()

    def _cmd_names(self, rest: str, now: float, fx: Effects) -> None:
        """/names [#chan] (RFC 2812 §3.2.5)."""
        chan = rest.split(" ")[0].encode() if rest else self._channel_here()
        if not chan:
            self._error(fx, "Usage: /names #channel", now)
        elif self._online(fx, now):
            fx.send.append(line(chan, command=b"NAMES"))

    def _channel_here(self) -> bytes:
        w = self.window
        return w.name if w.kind is WindowKind.CHANNEL else b""

    def _cmd_topic(self, rest: str, now: float, fx: Effects) -> None:
        """/topic [text] (RFC 2812 §3.2.4): show, or with text set, the current channel's topic."""
        chan = self._channel_here()
        if not chan:
            self._error(fx, "Usage: /topic [text] (in a channel)", now)
        elif self._online(fx, now):
            params = [chan] + ([rest.encode()] if rest else [])
            fx.send.append(line(*params, command=b"TOPIC"))

    def _cmd_away(self, rest: str, now: float, fx: Effects) -> None:
        """/away [text] (RFC 2812 §4.1): with text, mark away; without, back again."""
        if self._online(fx, now):
            fx.send.append(line(*([rest.encode()] if rest else []), command=b"AWAY"))

    def _cmd_quit(self, rest: str, now: float, fx: Effects) -> None:
        """/quit [message] (RFC 2812 §3.1.7)."""
        if self.state in (ConnState.REGISTERING, ConnState.CONNECTED):
            fx.send.append(line((rest or "Leaving").encode(), command=b"QUIT"))
        fx.quit = True

    def _cmd_help(self, rest: str, now: float, fx: Effects) -> None:
        """/help."""
        for text in HELP.splitlines():
            self._info(fx, text, now, self.window)

    def _cmd_win(self, rest: str, now: float, fx: Effects) -> None:
        """/win N (1 is the server window), /win next, /win prev."""
        arg = rest.lower()
        count = len(self.windows)
        if arg in ("next", "n", "+"):
            self.select((self.current + 1) % count)
        elif arg in ("prev", "p", "-"):
            self.select((self.current - 1) % count)
        elif arg.isdigit() and 1 <= int(arg) <= count:
            self.select(int(arg) - 1)
        else:
            self._error(fx, f"Usage: /win N (1-{count}) | next | prev", now)

    def _cmd_quote(self, rest: str, now: float, fx: Effects) -> None:
        """/quote LINE: send a raw line, for anything the client has no command for."""
        if not rest:
            self._error(fx, "Usage: /quote RAW IRC LINE", now)
            return
        try:
            parse(rest.encode())
        except ProtocolError as exc:
            self._error(fx, f"Not an IRC line: {exc}", now)
            return
        if self.state in (ConnState.REGISTERING, ConnState.CONNECTED):
            fx.send.append(rest.encode() + b"\r\n")
        else:
            self._error(fx, "Not connected", now)

    def completions(self) -> list[str]:
        """Words Tab can complete to: members of the current channel, windows, commands."""
        names = list(self.window.members.values())
        names += [w.title for w in self.windows[1:]]
        return names + ["/" + c for c in _COMMANDS]


_Handler = Callable[[Session, Message, float, Effects], None]
_Command = Callable[[Session, str, float, Effects], None]

_HANDLERS: dict[bytes, _Handler] = {
    b"PING": Session._on_ping,
    b"PONG": Session._on_pong,
    b"PRIVMSG": Session._on_privmsg,
    b"NOTICE": Session._on_privmsg,
    b"JOIN": Session._on_join,
    b"PART": Session._on_part,
    b"KICK": Session._on_kick,
    b"QUIT": Session._on_quit,
    b"NICK": Session._on_nick,
    b"TOPIC": Session._on_topic,
    b"MODE": Session._on_mode,
    b"INVITE": Session._on_invite,
    b"ERROR": Session._on_error,
    b"CAP": Session._on_cap,
    b"AWAY": Session._on_away,
    b"TAGMSG": Session._on_tagmsg,
    N.RPL_ISUPPORT: Session._on_isupport,
    N.ERR_UNKNOWNCOMMAND: Session._on_unknown_command,
    N.ERR_NOTREGISTERED: Session._on_unknown_command,
    N.RPL_WELCOME: Session._on_welcome,
    N.RPL_ENDOFMOTD: Session._on_end_of_motd,
    N.ERR_NOMOTD: Session._on_end_of_motd,
    N.ERR_NICKNAMEINUSE: Session._on_nick_in_use,
    N.ERR_ERRONEUSNICKNAME: Session._on_erroneous_nick,
    N.ERR_PASSWDMISMATCH: Session._on_password_mismatch,
    N.RPL_TOPIC: Session._on_rpl_topic,
    N.RPL_NOTOPIC: Session._on_rpl_topic,
    N.RPL_NAMREPLY: Session._on_namreply,
    N.RPL_ENDOFNAMES: Session._on_endofnames,
    N.RPL_AWAY: Session._on_rpl_away,
    N.RPL_UNAWAY: Session._on_away_numeric,
    N.RPL_NOWAWAY: Session._on_away_numeric,
}

_COMMANDS: dict[str, _Command] = {
    "join": Session._cmd_join,
    "j": Session._cmd_join,
    "part": Session._cmd_part,
    "leave": Session._cmd_part,
    "close": Session._cmd_close,
    "msg": Session._cmd_msg,
    "query": Session._cmd_query,
    "me": Session._cmd_me,
    "nick": Session._cmd_nick,
    "names": Session._cmd_names,
    "topic": Session._cmd_topic,
    "away": Session._cmd_away,
    "quit": Session._cmd_quit,
    "exit": Session._cmd_quit,
    "help": Session._cmd_help,
    "win": Session._cmd_win,
    "window": Session._cmd_win,
    "quote": Session._cmd_quote,
    "raw": Session._cmd_quote,
}
