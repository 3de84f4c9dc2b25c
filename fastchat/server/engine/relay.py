"""The hot path: PRIVMSG/NOTICE from a local client towards a channel or a user.

Owns: the fast path for the commonest line (one target, plain text), the streaming of
approved messages to the sequencer without a barrier, and runs (consecutive approved messages
from one sender to one channel, relayed as one record; at several workers with routes, a run
joins a segment: engine/segments.py).
Must never: touch a socket, or decide a refusal on its own (a replica that says no may only be
behind: the sequencer decides those, under the client's barrier).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastchat.irc.casemap import fold
from fastchat.irc.message import MAX_LINE
from fastchat.server.commands import nickserv
from fastchat.server.connection import Client, source_of
from fastchat.server.network.records import D_CHAN, OP, R_CHANMSG, VOICE, RUserMsg, make
from fastchat.server.network.sequencer import is_ctcp, may_speak
from fastchat.server.render import lines

if TYPE_CHECKING:
    from fastchat.server.engine.core import WorkerCore

_CHANNEL_PREFIXES = b"#&"
#: Modern IRC STATUSMSG: the member prefixes a channel target may carry (ISUPPORT STATUSMSG)
_STATUS_PREFIXES = b"@+"


def _status(target: bytes) -> int:
    """The member flags a STATUSMSG target (``@#chan``, ``+#chan``) is for: a recipient must
    hold one of them (``+`` means voiced or better); 0 when ``target`` is not one."""
    name = target.lstrip(_STATUS_PREFIXES)
    if name == target or not name or name[0] not in _CHANNEL_PREFIXES:
        return 0
    return OP | VOICE if b"+" in target[: len(target) - len(name)] else OP


class _Run:
    """Approved messages from one client to one channel, not yet relayed (see Relay.flush)."""

    __slots__ = ("client", "key", "lines", "notice")

    def __init__(self, client: Client, key: bytes, lines_: list[bytes], notice: bool) -> None:
        self.client = client
        self.key = key
        self.lines = lines_
        self.notice = notice


class Relay:
    """Messages out of one worker core, in order, as cheaply as the rules allow."""

    __slots__ = ("_run", "core", "notices", "privmsgs")

    def __init__(self, core: WorkerCore) -> None:
        self.core = core
        self._run: _Run | None = None  # approved channel messages being joined (flush)
        # Lines the fast path took, for STATS m (the dispatcher counts every other command):
        # two integers, not a dictionary, on the hot path
        self.privmsgs = 0
        self.notices = 0

    def fast_message(self, client: Client, line: bytes) -> bool:
        """The hot path for ``PRIVMSG <one target> :<text>`` (``line`` starts with
        ``PRIVMSG `` or ``NOTICE ``).

        It does exactly what the PRIVMSG handler does for that shape, without building a
        :class:`Message`; any other shape (several targets, tags, a source, no text, odd
        spacing, an overlong line) returns False and takes the general path.
        """
        notice = line[0] == 78  # "N"
        target, sep, text = line[7 if notice else 8 :].partition(b" ")
        if (
            not sep
            or not target
            or text[:1] != b":"
            or len(text) < 2
            or b"," in target
            or len(line) > MAX_LINE - 2
            or b"\0" in line
        ):
            return False
        if notice:
            command = b"NOTICE"
            self.notices += 1
        else:
            command = b"PRIVMSG"
            self.privmsgs += 1
        out = lines.message_fast(client.source or source_of(client), command, target, text)
        if target[0] in _CHANNEL_PREFIXES:
            # What message() does for a line with no tags from a client with no labeled
            # command open (a line with tags never comes here, and the lines after a labeled
            # one wait while it is open), without its tests
            key = fold(target)
            state = self.core.state
            chan = state.channels.get(key)
            # (a hidden member of a +D channel goes by message(): the sequencer reveals it)
            if (
                chan is not None
                and may_speak(state, chan, client.uid)
                and client.uid not in chan.hidden
                and text[1] != 1  # (a CTCP, "\x01...": +C is the sequencer's to check)
            ):
                self._join_run(client, key, out, notice)
                return True
        self.message(client, target, out, notice)
        return True

    def _join_run(self, client: Client, key: bytes, line: bytes, notice: bool) -> None:
        """An approved plain message to channel ``key``: the next line of the client's run
        to that channel, or the first of a new one (see flush)."""
        run = self._run
        if run is not None and run.client is client and run.key == key:
            run.lines.append(line)
            run.notice = run.notice and notice
        else:
            self.flush()
            self._run = _Run(client, key, [line], notice)

    def message(
        self,
        client: Client,
        target: bytes,
        line: bytes,
        notice: bool,
        tags: bytes = b"",
        flags: int = 0,
    ) -> None:
        """Send one formatted PRIVMSG/NOTICE/TAGMSG ``line`` towards ``target``, with the
        client-only ``tags`` to relay and ``flags`` (records.TAGMSG; a STATUSMSG's member
        flags are found here, from ``target``).

        If the replica says the message may go, it streams to the sequencer with no barrier
        (the common case, and the fast one). If the replica says no, the replica may only be
        behind (a user who registered a moment ago on another worker), so the sequencer
        decides, under the client's barrier: its answer comes before the reply to anything
        the client sent next, exactly as on a single server. A labeled message goes under
        the barrier too: its reply (the echo, or an error) is complete at its D_DONE.
        """
        key = fold(target)
        core = self.core
        state = core.state
        if target[0] not in _CHANNEL_PREFIXES:
            status = _status(target)
            if status:
                # Modern IRC STATUSMSG: PRIVMSG @#chan reaches the channel's operators
                key = key.lstrip(_STATUS_PREFIXES)
                flags |= status
            else:
                self._to_user(client, key, line, notice, tags, flags)
                return
        chan = state.channels.get(key)
        # A hidden member of a +D channel (delayed join) is decided by the sequencer too:
        # its JOIN is shown (E_REVEAL) right before its first message, once.
        if (
            chan is not None
            and may_speak(state, chan, client.uid)
            and client.uid not in chan.hidden
            and not is_ctcp(line)  # (+C, the channel's now: the sequencer's to say)
        ):
            if not (tags or flags or client.label):
                self._join_run(client, key, line, notice)
                return
            self.flush()
            first = client.msgs
            client.msgs += 1
            if client.label is None:
                if core.sequencer is not None:  # one worker: as flush does (DChan, by hand)
                    now = int(core.now * 1000)
                    record = (D_CHAN, key, client.uid, line, first, tags, flags, now)
                    core.replica.d_chan(record)
                    core.stored(record)  # the history (runtime/storage.py)
                else:
                    client.streamed = True
                    core.outbox.append(
                        (R_CHANMSG, client.uid, key, line, notice, False, first, tags, flags)
                    )
                return
        else:
            self.flush()
            first = client.msgs
            client.msgs += 1
        # RChanMsg, decided under the barrier
        core.submit((R_CHANMSG, client.uid, key, line, notice, True, first, tags, flags))

    def _to_user(
        self, client: Client, key: bytes, line: bytes, notice: bool, tags: bytes, flags: int
    ) -> None:
        self.flush()
        core = self.core
        if key == nickserv.FOLDED:  # the service, not a user (the one comparison it costs)
            if client.caps & core.echo_bit and not flags:  # echo-message: its line back
                core.send(client, line)
            if not (notice or flags):  # it answers no NOTICE, no TAGMSG
                nickserv.message(core, client, line.split(b" :", 1)[1].rstrip(b"\r\n"))
            return
        echo = bool(client.caps & core.echo_bit)
        first = client.msgs
        client.msgs += 1
        # Whether the target is away is the sequencer's to say (RPL_AWAY): a replica may not
        # have applied an AWAY that was already acknowledged. A target the replica does not
        # know (or a labeled message) waits for the sequencer's answer under the barrier.
        doubted = client.label is not None or core.state.nicks.get(key) is None
        request = make(RUserMsg, client.uid, key, line, notice, doubted, echo, first, tags, flags)
        if not doubted:
            client.streamed = True
        core.submit(request, barrier=doubted)

    def flush(self) -> None:
        """Relay the run of approved messages from one client to one channel as one record.

        Shaped for speed: consecutive messages from one sender to one channel (what a client
        that pipelines writes) are joined into one ``bytes``, so the sequencer's check, the
        hub's routing, the bus frame and each member's append happen once per run instead of
        once per message. Members receive exactly the same bytes in the same order; any other
        command flushes the run first, so order across targets is untouched.
        """
        run = self._run
        if run is None:
            return
        self._run = None
        lines_ = run.lines
        blob = lines_[0] if len(lines_) == 1 else b"".join(lines_)
        client = run.client
        first = client.msgs  # the msgid of line i is made of first + i (caps/message_tags.py)
        client.msgs = first + len(lines_)
        core = self.core
        if core.sequencer is not None:
            # One worker: this replica *is* the sequencer's state, so the approval above is
            # its decision; deliver without re-deciding (the hot path). DChan, by hand.
            now = int(core.now * 1000)
            record = (D_CHAN, run.key, client.uid, blob, first, b"", 0, now)
            core.replica.d_chan(record)
            core.stored(record)  # the history (runtime/storage.py): O(1), off to its thread
        else:
            client.streamed = True
            segments = core.segments
            if segments.enabled:  # several workers, routes kept: into a segment (segments.py)
                user = client.user
                account = user.account or b"" if user is not None else b""
                segments.add(run.key, client.uid, blob, first, run.notice, account)
                return
            # RChanMsg, by hand
            core.outbox.append(
                (R_CHANMSG, client.uid, run.key, blob, run.notice, False, first, b"", 0)
            )
