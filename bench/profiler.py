"""Where a fastchat server spends its time under a benchmark load: py-spy over its processes.

Owns: starting ``py-spy record`` (raw collapsed stacks) on every process of the server's
tree for the measured window, and boiling the stacks down to a short text report: the share
of samples per function, inclusive and self, for each process that was busy.
Must never: run during a measured run (the profiler's own CPU would pollute the figures).
"""

from __future__ import annotations

import collections
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import psutil

_RATE = 200  # samples per second: ample for a few seconds' window, cheap for the target


def _py_spy() -> str | None:
    local = Path(sys.executable).with_name("py-spy")
    return str(local) if local.exists() else shutil.which("py-spy")


class Recorder:
    """``start(seconds)`` as the window opens; ``finish()`` writes the report, returns a note."""

    def __init__(self, tree: Callable[[], list[psutil.Process]], dest: Path) -> None:
        self.tree = tree
        self.dest = dest
        self.raw: dict[int, Path] = {}
        self.procs: list[subprocess.Popen[bytes]] = []
        self.thread: threading.Thread | None = None

    def start(self, seconds: float) -> None:
        exe = _py_spy()
        if exe is None:
            return
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        for p in self.tree():
            raw = self.dest.with_name(f"{self.dest.stem}.{p.pid}.raw")
            self.raw[p.pid] = raw
            cmd = [exe, "record", "--pid", str(p.pid), "--duration", f"{max(1, int(seconds))}",
                   "--rate", str(_RATE), "--format", "raw", "--output", str(raw), "--nonblocking"]  # fmt: skip
            self.procs.append(
                subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            )

    def finish(self) -> str:
        if _py_spy() is None:
            return "py-spy is not installed (pip install py-spy); no profile"
        problems = []
        for proc in self.procs:
            try:
                _, err = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate(timeout=5)
            if proc.returncode:
                problems.append(
                    f"py-spy exited {proc.returncode}: {(err or b'').decode(errors='replace')[-300:]}"
                )
        sections = []
        for pid, raw in self.raw.items():
            if raw.exists():
                sections.append(summarize(raw.read_text(), f"pid {pid}"))
                raw.unlink()
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        text = "\n".join(s for s in sections if s) or "no samples\n"
        self.dest.write_text(text + "".join(f"\n{p}\n" for p in problems))
        return f"written to {self.dest}" + (
            f" ({len(problems)} py-spy failures)" if problems else ""
        )


def summarize(collapsed: str, title: str, top: int = 25) -> str:
    """Share of samples per function (inclusive, self) from py-spy's collapsed stacks; empty
    for a process that was idle (fewer than 20 samples)."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        own[frames[-1]] += n
        for name in {f.split(" (")[0] for f in frames}:
            inclusive[name] += n
    if total < 20:
        return ""
    lines = [
        f"## {title}: {total} samples (waiting in select/epoll counts as a sample)",
        "",
        "inclusive:",
    ]
    # frames in (nearly) every sample, the entry points down to the loop, say nothing
    busy = [(name, n) for name, n in inclusive.most_common() if n < 0.98 * total]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in busy[:top]]
    lines += ["", "self (function and line):"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in own.most_common(top)]
    return "\n".join(lines) + "\n"
