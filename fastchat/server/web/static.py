"""The web root: which file a request path names, and how it is described.

Owns: mapping a request target (``/js/app.js?v=2``) to a regular file inside the web root,
never outside it (``..``, encoded or not, is refused; a symbolic link that leads out is not
followed), and the file's Content-Type and ETag.
Must never: touch a socket. It reads files under the root, and only those.
"""

from __future__ import annotations

import enum
import os
import stat
import urllib.parse
from dataclasses import dataclass

#: Content-Type by extension; anything else is application/octet-stream (and, with
#: ``X-Content-Type-Options: nosniff``, never guessed by the browser)
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".wasm": "application/wasm",
}
DEFAULT_TYPE = "application/octet-stream"
INDEX = "index.html"
#: The largest file served (the web client's files are far smaller): a bigger one is 404,
#: so that a stray file in the root cannot make a worker read megabytes on its loop
MAX_FILE = 4 << 20


class Refusal(enum.Enum):
    """Why a target names no file: a path that tries to leave the root (400), or none (404)."""

    BAD_PATH = 400
    NOT_FOUND = 404


@dataclass(frozen=True, slots=True)
class StaticFile:
    """A file to answer with: its bytes, Content-Type and ETag (size and mtime)."""

    body: bytes
    content_type: str
    etag: str


class StaticFiles:
    """The files under ``root`` (``None``: no root, every request is 404)."""

    def __init__(self, root: str | None) -> None:
        self.root = os.path.realpath(root) if root is not None else None

    def find(self, target: bytes) -> StaticFile | Refusal:
        """The file ``target`` (a request target: path, maybe a query) names; a folder
        means its ``index.html``."""
        path = target.split(b"?", 1)[0].split(b"#", 1)[0]
        if not path.startswith(b"/"):
            return Refusal.BAD_PATH  # (absolute-form or *: not for files)
        try:
            text = urllib.parse.unquote_to_bytes(path).decode("utf-8")
        except UnicodeDecodeError:
            return Refusal.BAD_PATH
        parts = [p for p in text.split("/") if p]
        if any(p == ".." for p in parts) or "\\" in text or "\0" in text:
            return Refusal.BAD_PATH
        if self.root is None or any(p.startswith(".") for p in parts):
            return Refusal.NOT_FOUND  # (hidden files: .git, .env... are nobody's business)
        full = os.path.join(self.root, *parts)
        if os.path.isdir(full):
            full = os.path.join(full, INDEX)
        real = os.path.realpath(full)
        if real != self.root and not real.startswith(self.root + os.sep):
            return Refusal.NOT_FOUND  # a symbolic link out of the root
        try:
            with open(real, "rb") as f:
                info = os.fstat(f.fileno())
                if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE:
                    return Refusal.NOT_FOUND
                body = f.read(MAX_FILE + 1)
        except OSError:
            return Refusal.NOT_FOUND
        if len(body) > MAX_FILE:
            return Refusal.NOT_FOUND
        kind = CONTENT_TYPES.get(os.path.splitext(real)[1].lower(), DEFAULT_TYPE)
        return StaticFile(body, kind, f'"{len(body):x}-{info.st_mtime_ns:x}"')
