"""Reading a socket in big chunks at a steady price.

Owns: :class:`Receiver`, one reusable buffer that ``recv_into`` fills, and the size of a read.
Must never: interpret what it reads.

Why not ``sock.recv(256 KiB)``: that allocates a 256 KiB ``bytes`` for every call and shrinks
it to what arrived. Above glibc's mmap threshold (128 KiB until something frees a bigger
block, which raises it) each such allocation is an ``mmap``, page faults while the kernel
copies, and an ``mremap``: measured 23 µs per 2 KB read against 4 µs once the threshold had
happened to rise, so the same code ran 15–20% more CPU per delivery depending on what the
process had allocated and freed before (BENCHMARKS.md, "a phantom regression").

So a read is a ``recv`` of 64 KiB, under the threshold whatever it is (4.5 µs for 2 KB: the
common case, a few lines); only when that fills up, meaning more is waiting, does the rest
come through ``recv_into`` one reused 256 KiB buffer, copied out once (5.3 µs for 2 KB on its
own, so not the first choice; a copy of a big chunk is cheap next to its lines' work).
"""

from __future__ import annotations

import socket

#: Big reads: many lines per recv (PERFORMANCE-NOTES.md: 64–256 KiB chunks)
READ_SIZE = 1 << 18
#: The first recv of a read: under glibc's lowest mmap threshold (128 KiB)
FIRST_READ = 1 << 16


class Receiver:
    """One buffer for the reads of one loop (not shared across threads)."""

    __slots__ = ("_buf", "_view")

    def __init__(self, size: int = READ_SIZE) -> None:
        self._buf = bytearray(size)
        self._view = memoryview(self._buf)

    def recv(self, sock: socket.socket) -> bytes:
        """Up to ``FIRST_READ`` + the buffer's size of what ``sock`` holds (``b""`` at the end of
        the stream); raises what ``recv`` raises (``BlockingIOError`` when nothing is
        there)."""
        data = sock.recv(FIRST_READ)
        if len(data) < FIRST_READ:
            return data
        try:
            n = sock.recv_into(self._buf)
        except (BlockingIOError, InterruptedError):
            return data
        except OSError:
            return data  # the next read meets the error again, after these lines count
        return data + self._view[:n].tobytes()
