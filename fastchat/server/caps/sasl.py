"""IRCv3 ``sasl`` (https://ircv3.net/specs/extensions/sasl-3.1): logging in to an account with
``AUTHENTICATE`` during registration (or after it).

Owns: the capability's declaration and the mechanisms it lists (``CAP LS 302`` shows them as
its value). The exchange itself is :mod:`fastchat.server.commands.accounts`.
"""

from __future__ import annotations

from fastchat.server.caps.registry import Capability

NAME = b"sasl"
#: What AUTHENTICATE accepts (EXTERNAL comes with TLS client certificates, issue 13)
MECHANISMS = (b"PLAIN",)

CAPABILITY = Capability(NAME, value=b",".join(MECHANISMS), doc=__doc__ or "")
