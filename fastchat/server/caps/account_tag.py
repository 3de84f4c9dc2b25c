"""IRCv3 ``account-tag`` (https://ircv3.net/specs/extensions/account-tag): an ``account`` tag
on every line a logged-in user causes.

Owns: the capability's declaration and its tag. The account is the sender's as the network
state has it when the line is rendered (each worker applies the same E_LOGIN at the same
place of the one order, so every recipient sees the same); "if the user is not identified to
any services account, the tag MUST NOT be sent".
"""

from __future__ import annotations

from fastchat.server.caps.registry import Capability, Meta

NAME = b"account-tag"


def _account(meta: Meta) -> bytes | None:
    return meta.account


CAPABILITY = Capability(NAME, tags=((b"account", _account),), doc=__doc__ or "")
