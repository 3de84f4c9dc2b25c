"""IRCv3 labeled responses: every reply to a labeled command, in exactly one logical message.

Owns: recognising a command's ``label`` tag, collecting what the command produces for its
client until the command is complete, and sending it labeled (one line with ``label=``, a
``labeled-response`` batch around several, ``ACK`` for none). Must never: touch a socket or
know what any command does.

A reply is not only what a handler sends at once: a JOIN's reply is the JOIN line the
sequencer decided and the NAMES after it; a labeled PRIVMSG's is its echo, decided in the
channel's order; a WHOIS of a user on another worker waits for a read barrier first. So a
labeled command stays *open* until the client has no request left with the sequencer (its
barrier, ``client.waiting``, is down): the dispatcher opens it, and the core closes it then.
Meanwhile what reaches the client is either part of the reply (what the core sends it
directly, and any relayed line whose sender is the client itself: its own JOIN, NICK, echo)
or not (another user's message, a server PING): such a line goes out at once, and if part of
the reply is already waiting, its batch opens first so nothing is reordered (the batch spec
lets other lines interleave with an open batch).

One subtlety across workers: the client's earlier messages to channels stream to the
sequencer without a barrier, so their echoes could arrive while a later labeled command is
open and be taken for its reply. A labeled command from a client that has streamed since its
last barrier therefore first waits for a read barrier (``R_SYNC``), as queries do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastchat.irc.message import parse_tags
from fastchat.server.caps import batch, labeled_response
from fastchat.server.connection import Client, Labeled
from fastchat.server.render.variants import add_tag, escape_tag_value

if TYPE_CHECKING:
    from fastchat.server.engine.core import WorkerCore

#: The spec: "The value MUST NOT exceed 64 bytes."
MAX_LABEL = 64


class Labels:
    """The labeled commands of one core's clients."""

    __slots__ = ("_batches", "core", "current", "mask")

    def __init__(self, core: WorkerCore) -> None:
        self.core = core
        # labeled-response needs batch too ("MUST be negotiated to use labeled responses");
        # 0 (labels never honoured) unless both are offered
        bits = core.caps.bit(labeled_response.NAME), core.caps.bit(batch.NAME)
        self.mask = bits[0] | bits[1] if all(bits) else 0
        self.current: Client | None = None  # whose handler is running (see close_if_done)
        self._batches = 0

    def label_of(self, client: Client, tags: bytes | None) -> bytes | None:
        """The label a line's raw tag section ``tags`` carries (unescaped), if its client
        negotiated labeled responses; else None. Cheap when there is none: most lines have
        no tags."""
        if not self.mask or client.caps & self.mask != self.mask:
            return None
        if tags is None or b"label=" not in tags:
            return None
        return parse_tags(tags).get(b"label")

    def open(self, client: Client, label: bytes) -> None:
        client.label = Labeled(escape_tag_value(label))

    def capture(self, client: Client, data: bytes) -> None:
        """``data`` (whole lines) is part of the open reply of ``client``."""
        labeled = client.label
        assert labeled is not None
        if labeled.batch:
            tag = b"batch=" + labeled.batch
            self._queue(client, b"".join(add_tag(ln, tag) for ln in _lines(data)))
        else:
            labeled.lines.extend(_lines(data))

    def other(self, client: Client, data: bytes) -> None:
        """``data`` reaches ``client`` while its labeled command is open, but is not part of
        the reply: it goes out now, after the reply's batch opens if part of it waits."""
        labeled = client.label
        if labeled is not None and labeled.lines and not labeled.batch:
            self._open_batch(client, labeled)
        self._queue(client, data)

    def spill(self, client: Client) -> None:
        """Open the reply's batch now, with what it holds so far, so that the rest of the
        reply goes straight into the client's output, in order (a place kept there for
        lines to come, ``WorkerCore.reserve_output``, must have the reply so far before it)."""
        labeled = client.label
        if labeled is not None and not labeled.batch:
            self._open_batch(client, labeled)

    def close_if_done(self, client: Client) -> None:
        """The client's barrier is down: its labeled command, if one is open, is complete
        (unless its handler is still running: it sends more, then the dispatcher closes)."""
        if client.label is not None and client is not self.current and not client.waiting:
            self.close(client)

    def close(self, client: Client) -> None:
        """Send the reply of the client's labeled command, now complete."""
        labeled = client.label
        if labeled is None:
            return
        client.label = None
        server = self.core.config.server_name
        if labeled.batch:
            self._queue(client, b":%s BATCH -%s\r\n" % (server, labeled.batch))
        elif not labeled.lines:
            self._queue(client, b"@label=%s :%s ACK\r\n" % (labeled.label, server))
        elif len(labeled.lines) == 1:
            self._queue(client, add_tag(labeled.lines[0], b"label=" + labeled.label))
        else:
            self._open_batch(client, labeled)
            self._queue(client, b":%s BATCH -%s\r\n" % (server, labeled.batch))

    def _open_batch(self, client: Client, labeled: Labeled) -> None:
        self._batches += 1
        labeled.batch = b"%x" % self._batches
        server = self.core.config.server_name
        tag = b"batch=" + labeled.batch
        self._queue(
            client,
            b"@label=%s :%s BATCH +%s labeled-response\r\n" % (labeled.label, server, labeled.batch)
            + b"".join(add_tag(ln, tag) for ln in labeled.lines),
        )
        labeled.lines = []

    def _queue(self, client: Client, data: bytes) -> None:
        """Past the capture: straight into the client's output."""
        if client.closed or not data:
            return
        self.core.queue(client, data)


def _lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True) if data.count(b"\n") > 1 else [data]
