"""IRCv3 ``account-notify`` (https://ircv3.net/specs/extensions/account-notify): an ACCOUNT
line when a user logs in to or out of an account.

Owns: the capability's declaration. fastchat has no accounts yet, so nobody logs in and no
ACCOUNT line is ever sent; offering it is still right (a client that negotiates it is told
every change there is: none). The hook is ready for accounts (issue 12):
``Replica.notify_account(user, time)`` in ``engine/replica.py`` sends
``:nick!user@host ACCOUNT <account>`` (``*``: logged out; ``render/lines.py`` ``account``) to
the local clients that share a channel with the user, the user included ("including
themselves"), that negotiated it. The replica calls it when it applies the event that changes
``User.account``.
Must never: hold rendering of its own.
"""

from __future__ import annotations

from fastchat.server.caps.registry import Capability

NAME = b"account-notify"

CAPABILITY = Capability(NAME, doc="ACCOUNT lines when channel peers log in or out")
