"""The bus between workers and the hub: batched, length-prefixed binary frames over a socket.

Owns: the frame format and :class:`Link`, a non-blocking stream socket with an output buffer
and a frame reader.
Must never: interpret records (that is the core's and the sequencer's job) or block.

A frame is ``!I`` length + ``marshal.dumps(list_of_records)``. Each side appends the records of
one loop turn to a list and writes them as *one* frame, with one ``send`` per peer per turn:
per PERFORMANCE-NOTES.md, batched socketpair frames cost ~0.2–0.9 µs per message against 6–8 µs
for a pickled ``multiprocessing.Pipe`` message. ``marshal`` (C, no per-object Python work) cuts
a batch of thousands of tuples of bytes/ints in one call; it is safe here because both ends
are the same interpreter build (forked from one supervisor) and trust each other.
"""

from __future__ import annotations

import marshal
import socket
import struct
import time
from collections import deque
from itertools import islice

from fastchat.server.network.records import Record
from fastchat.server.runtime.receive import Receiver

_HEADER = struct.Struct("!I")
HEADER_SIZE = _HEADER.size
#: Frames handed to one ``sendmsg`` at most (Linux takes up to 1024 buffers per call).
_IOV_MAX = 512


def encode(records: list[Record]) -> bytes:
    """One frame holding ``records``."""
    body = marshal.dumps(records)
    return _HEADER.pack(len(body)) + body


def frame_header(size: int) -> bytes:
    """The header of a frame whose body (a marshalled list of records) is ``size`` bytes."""
    return _HEADER.pack(size)


class FrameReader:
    """Cuts a byte stream into batches of records."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> list[list[Record]]:
        buf = self._buf + data if self._buf else data
        batches: list[list[Record]] = []
        pos = 0
        end = len(buf)
        while end - pos >= HEADER_SIZE:
            (size,) = _HEADER.unpack_from(buf, pos)
            if end - pos - HEADER_SIZE < size:
                break
            start = pos + HEADER_SIZE
            batches.append(marshal.loads(buf[start : start + size]))
            pos = start + size
        self._buf = buf[pos:]
        return batches


class Link:
    """One end of a worker–hub connection: queue frames, send what the socket takes."""

    __slots__ = (
        "_out",
        "backlog",
        "opened",
        "reader",
        "received_bytes",
        "received_records",
        "receiver",
        "sent_bytes",
        "sent_records",
        "sock",
    )

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.reader = FrameReader()
        self.receiver = Receiver()
        # Frames not yet (wholly) taken by the socket; the first may be a memoryview of what
        # is left of a frame after a partial send (never a copy: see flush).
        self._out: deque[bytes | memoryview] = deque()
        self.backlog = 0  # bytes queued that the peer has not taken yet
        # Traffic, for STATS l: counted per frame and per read, never per record.
        self.opened = time.time()
        self.sent_records = 0  # queued in frames (a frame queued again is not counted again)
        self.sent_bytes = 0  # taken by the socket
        self.received_records = 0
        self.received_bytes = 0

    def queue(self, records: list[Record]) -> bytes:
        """Queue one frame of ``records``; returns it (see :class:`Retained`)."""
        frame = encode(records)
        self.queue_frame(frame)
        self.sent_records += len(records)
        return frame

    def queue_frame(self, frame: bytes) -> None:
        self._out.append(frame)
        self.backlog += len(frame)

    def flush(self) -> bool:
        """Send what we can. True when everything is out. Raises OSError if the peer is gone.

        Written for a peer that lags: what the socket does not take stays as it was queued,
        the first frame as a memoryview past what was sent. Joining everything queued and
        keeping ``data[sent:]`` (as this did) copied the whole backlog at every partial send:
        with megabytes queued for a starved worker the hub spent 5x its CPU per message
        copying (bench/FINDINGS.md, issue 14). Several frames go out with one ``sendmsg``
        (at most ``_IOV_MAX`` of them per call), so nothing is copied in user space at all.
        """
        out = self._out
        sock = self.sock
        while out:
            try:
                sent = sock.send(out[0]) if len(out) == 1 else sock.sendmsg(islice(out, _IOV_MAX))
            except (BlockingIOError, InterruptedError):
                return False
            if not sent:
                return False
            self.sent_bytes += sent
            self.backlog -= sent
            while sent:
                head = out[0]
                if sent < len(head):
                    out[0] = memoryview(head)[sent:]  # a view: the rest is not copied
                    return False
                sent -= len(head)
                out.popleft()
        self.backlog = 0
        return True

    def receive(self) -> list[list[Record]] | None:
        """Read what is there. None on EOF; raises OSError on a broken link."""
        try:
            data = self.receiver.recv(self.sock)
        except (BlockingIOError, InterruptedError):
            return []
        if not data:
            return None
        self.received_bytes += len(data)
        batches = self.reader.feed(data)
        self.received_records += sum(map(len, batches))
        return batches

    def close(self) -> None:
        self.sock.close()


class Retained:
    """The request frames a worker sent that not every worker has received the effects of.

    A worker numbers its requests (``first_seq`` is the number of the oldest one kept); the
    hub tells it how far every worker has received (its ``stable``), and the frames below
    that are forgotten. If the hub dies, the frames kept are sent again to the new one, which
    decides them exactly once for everybody (see hub.py, ``_replay``). Frames are kept as
    the bytes already encoded: nothing is marshalled twice, and ``size`` is their true cost
    in memory, which the worker bounds with backpressure.
    """

    __slots__ = ("_frames", "first_seq", "next_seq", "size")

    def __init__(self, first_seq: int) -> None:
        self._frames: deque[tuple[int, bytes]] = deque()  # (seq after the frame, frame)
        self.first_seq = first_seq
        self.next_seq = first_seq
        self.size = 0

    def add(self, frame: bytes, count: int) -> None:
        self.next_seq += count
        self._frames.append((self.next_seq, frame))
        self.size += len(frame)

    def ack(self, upto: int) -> None:
        """Every worker has received the effects of the requests numbered below ``upto``."""
        frames = self._frames
        while frames and frames[0][0] <= upto:
            end, frame = frames.popleft()
            self.first_seq = end
            self.size -= len(frame)

    def frames(self) -> list[bytes]:
        return [frame for _, frame in self._frames]
