"""IRCv3 ``draft/account-registration``
(https://ircv3.net/specs/extensions/account-registration): ``REGISTER <account> <email>
<password>`` creates an account and logs the client in to it.

Owns: the capability's declaration and what its value promises: ``custom-account-name`` (the
account need not be the current nick); no ``before-connect`` (REGISTER needs a registered
connection) and no ``email-required``. The command is
:mod:`fastchat.server.commands.accounts`.
"""

from __future__ import annotations

from fastchat.server.caps.registry import Capability

NAME = b"draft/account-registration"

CAPABILITY = Capability(NAME, value=b"custom-account-name", doc=__doc__ or "")
