"""IRCv3 ``extended-join`` (https://ircv3.net/specs/extensions/extended-join): a JOIN line
that says who joined, ``:nick!user@host JOIN #channel <account> :<realname>``.

Owns: the capability's declaration. Where it acts: ``engine/replica.py`` renders a JOIN in at
most two forms, the plain one and the extended one (``render/lines.py`` ``join_extended``),
each once, and gives each local member the form its capabilities ask for (the same for the
JOIN that CHGHOST's fallback shows). The account is ``*`` while nobody can log in; the
user's ``account`` (``network/state.py``) is what issue 12 (accounts) will set.
Must never: hold rendering of its own (the renderer owns every client-visible line).
"""

from __future__ import annotations

from fastchat.server.caps.registry import Capability

NAME = b"extended-join"

CAPABILITY = Capability(NAME, doc="the account and realname of whoever joins, in the JOIN")
