"""IRCv3 ``account-tag`` (https://ircv3.net/specs/extensions/account-tag): an ``account`` tag
on every line a logged-in user causes.

Owns: the capability's declaration. The spec: "If the user is not identified to any services
account, the tag MUST NOT be sent", and in fastchat nobody is yet (accounts are issue 12), so
the declaration has no tag, and a client that negotiates only this still gets the shared
plain lines (no tag-adding capability: the fan-out does not look at it). Issue 12 adds the
tag here, ``tags=((b"account", <the sender's account, or None>),)``, once a line's
:class:`~fastchat.server.caps.registry.Meta` carries its sender's account (decided by the
sequencer with the line, like its time).
"""

from __future__ import annotations

from fastchat.server.caps.registry import Capability

NAME = b"account-tag"

CAPABILITY = Capability(NAME, doc="the sender's account in a tag (nobody has one yet)")
