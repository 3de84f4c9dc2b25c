"""IRCv3 ``standard-replies`` (https://ircv3.net/specs/extensions/standard-replies): the
client understands ``FAIL``, ``WARN`` and ``NOTE`` lines.

Owns: the capability's declaration, which is all it is: it tells clients the server may send
standard replies beyond those a spec asks for, and lets a client say it understands them.
The lines themselves are rendered by :func:`fastchat.server.render.lines.standard_reply`;
the specs that require one send it whether or not this was negotiated (``FAIL SETNAME
INVALID_REALNAME``, ``FAIL CHGHOST ...``).
"""

from __future__ import annotations

from fastchat.server.caps.registry import Capability

NAME = b"standard-replies"

CAPABILITY = Capability(NAME, doc="FAIL, WARN and NOTE lines")
