"""The one dispatcher: a line in, the checks every command row declares, then its handler.

Owns: parsing a client's line, refusing one that is not UTF-8 (``UTF8ONLY``), the fast path
hand-off for plain messages, the cross-cutting
checks (registered? capability? privilege? enough parameters?) done once here for every
command so no handler re-checks them (Ergo's ``Command.Run``), the read barrier for commands
that answer from the replica, turning errors into numerics, and counting the commands run.
Must never: hold what a command means (that is its family module in
:mod:`fastchat.server.commands`) or touch a socket.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastchat.irc import numerics as N
from fastchat.irc.linebuffer import OVERLONG
from fastchat.irc.message import BlankLine, Message, ProtocolError, input_too_long, parse
from fastchat.server.commands import COMMANDS, Command
from fastchat.server.connection import Client
from fastchat.server.engine.labels import MAX_LABEL
from fastchat.server.network.records import R_SYNC
from fastchat.server.render import lines

if TYPE_CHECKING:
    from fastchat.server.engine.core import WorkerCore

_MESSAGE_COMMANDS = (b"PRIVMSG ", b"NOTICE ")
_INVALID_UTF8 = b"Message rejected, your IRC software MUST use UTF-8 encoding on this network"


class Dispatcher:
    """Runs a core's client lines through the command table."""

    __slots__ = ("commands", "core", "counts")

    def __init__(self, core: WorkerCore, commands: dict[bytes, Command] = COMMANDS) -> None:
        self.core = core
        self.commands = commands
        # How often each command's handler ran here (STATS m; the relay counts the PRIVMSG
        # and NOTICE of its fast path)
        self.counts: dict[bytes, int] = {}

    def handle_line(self, client: Client, line: bytes, index: int) -> bool:
        """One line (the ``index``-th the client sent): parse, check, dispatch, turn remote
        errors into numerics. False when the line must wait behind a read barrier: the
        caller keeps it, and everything after it, for when the barrier lifts.

        The read barrier makes queries linearizable across workers. A command that answers
        from the replica (``Command.reads``: WHO, WHOIS, NAMES, ISON, MODE, NICK...) must see
        every change the network acknowledged to anyone before the line arrived; another
        worker's replica may not have applied it yet. So the query first sends ``R_SYNC``
        through the sequencer, under the client's barrier: its ``D_DONE`` comes back after
        every event decided before it (one FIFO from the hub), and then the replica is at
        least that current. One sync covers every line received before it was sent
        (``client.synced_upto``), so a burst of queries pays one round trip. With one worker
        the replica *is* the sequencer's state: no sync; the query only waits for the end of
        the loop turn (``WorkerCore.end_turn``), so it sees every line read in that turn.

        An unexpected exception in a handler is *our* bug: it disconnects this client only
        (logged with its connection id) and the worker carries on.
        """
        core = self.core
        relay = core.relay
        # UTF8ONLY: one C-speed scan when the line is ASCII, as nearly every line is; a
        # decode only for the rest (the setting is read only then too)
        if not line.isascii() and core.config.utf8_only and not _is_utf8(line):
            relay.flush()
            self._refuse_non_utf8(client, line)
            return True
        if (
            client.user is not None
            and line.startswith(_MESSAGE_COMMANDS)
            and relay.fast_message(client, line)
        ):
            return True
        relay.flush()  # whatever this line does comes after the messages before it
        if line is OVERLONG or input_too_long(line, core.config.max_line):
            core.reply(client, N.ERR_INPUTTOOLONG, b"Input line was too long")
            return True
        try:
            msg = parse(line)
        except BlankLine:
            return True  # Modern IRC: empty lines are ignored, without a reply
        except ProtocolError as exc:
            malformed = b"Malformed message: " + str(exc).encode()
            raw_tags = line[1:].partition(b" ")[0] if line[:1] == b"@" else None
            label = core.labels.label_of(client, raw_tags)
            if label is not None and len(label) <= MAX_LABEL:
                core.labels.open(client, label)
            core.reply(client, N.ERR_UNKNOWNERROR, b"*", malformed)
            core.labels.close(client)
            return True
        labels = core.labels
        label = labels.label_of(client, msg.tags) if msg.tags is not None else None
        if label is None:
            return self._dispatch(client, msg, index)
        if len(label) > MAX_LABEL:
            too_long = b"A label is at most %d bytes" % MAX_LABEL
            server = core.config.server_name
            core.send(
                client,
                lines.standard_reply(server, b"FAIL", msg.command, b"INVALID_LABEL", too_long),
            )
            return True
        if client.streamed and core.sequencer is None:
            # echoes of its earlier messages may still be on their way: not part of this reply
            client.streamed = False
            client.synced_upto = client.received
            core.submit((R_SYNC, client.uid))
            return False
        labels.open(client, label)
        outer, labels.current = labels.current, client
        try:
            done = self._dispatch(client, msg, index)
        finally:
            labels.current = outer
        if not done:
            client.label = None  # behind a read barrier: labeled again when it runs
        elif not client.waiting:
            labels.close(client)
        return done

    def _refuse_non_utf8(self, client: Client, line: bytes) -> None:
        """IRCv3 UTF8ONLY: ``FAIL <command> INVALID_UTF8 :...`` for a line that is not UTF-8
        ("If the server is unable to parse the sent command then it MAY send a FAIL command
        with no command name (i.e. ``*``)"), labeled if the line carried a label. Nothing of
        the line runs, as Ergo does: a message in another encoding would reach clients that
        cannot read it."""
        core = self.core
        try:
            msg = parse(line)
        except ProtocolError:
            command = b"*"
            tags = line[1:].partition(b" ")[0] if line[:1] == b"@" else None
        else:
            command, tags = msg.command, msg.tags
        label = core.labels.label_of(client, tags)
        if label is not None and len(label) <= MAX_LABEL and _is_utf8(label):
            core.labels.open(client, label)
        server = core.config.server_name
        core.send(
            client, lines.standard_reply(server, b"FAIL", command, b"INVALID_UTF8", _INVALID_UTF8)
        )
        core.labels.close(client)

    def _dispatch(self, client: Client, msg: Message, index: int) -> bool:
        """The checks every row declares, then the command's handler (see handle_line)."""
        core = self.core
        command = self.commands.get(msg.command)
        registered = client.user is not None
        if command is None or (
            command.capability is not None and not client.caps & core.caps.bit(command.capability)
        ):
            if registered:
                core.reply(client, N.ERR_UNKNOWNCOMMAND, msg.command, b"Unknown command")
            else:
                core.reply(client, N.ERR_NOTREGISTERED, b"You have not registered")
            return True
        if command.needs_registration and not registered:
            core.reply(client, N.ERR_NOTREGISTERED, b"You have not registered")
            return True
        if command.privilege is not None and command.privilege not in client.privileges:
            core.reply(client, N.ERR_NOPRIVILEGES, b"Permission Denied- You're not an IRC operator")
            return True
        if len(msg.params) < command.min_params:
            core.reply(client, N.ERR_NEEDMOREPARAMS, msg.command, b"Not enough parameters")
            return True
        if command.reads and index >= client.synced_upto:
            if core.sequencer is None:
                client.synced_upto = client.received
                core.submit((R_SYNC, client.uid))
                return False
            if core.reads_at_turn_end:
                client.synced_upto = client.received
                core.read_at_turn_end(client)
                return False
        counts = self.counts
        counts[command.name] = counts.get(command.name, 0) + 1
        try:
            command.handler(core, client, msg)
        except N.IRCError as err:
            core.reply(client, err.numeric, *err.params)
        except Exception:
            core.log.exception(
                "connection %#x: handler for %r failed; disconnecting it", client.uid, msg.command
            )
            core.disconnect(client, b"Internal server error")
        return True


def _is_utf8(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
