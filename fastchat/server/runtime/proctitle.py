"""Process names: what ``ps -o comm`` and psutil's ``name()`` show for each role
(``fastchat-super``, ``fastchat-hub``, ``fastchat-workerN``, ``fastchat-store``)."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys


def set_process_name(name: str) -> None:
    """Name this process (``ps -o comm``, psutil ``name()``) so operators can tell roles apart."""
    if sys.platform != "linux":
        return
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return
    libc = ctypes.CDLL(libc_name, use_errno=True)
    pr_set_name = 15
    libc.prctl(pr_set_name, name.encode()[:15], 0, 0, 0)
