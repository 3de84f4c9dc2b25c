"""IRCv3 ``sasl`` (https://ircv3.net/specs/extensions/sasl-3.1): logging in to an account with
``AUTHENTICATE`` during registration (or after it).

Owns: the capability's declaration and the mechanisms it lists (``CAP LS 302`` shows them as
its value). The exchange itself is :mod:`fastchat.server.commands.accounts`.
"""

from __future__ import annotations

from fastchat.server.caps.registry import Capability

NAME = b"sasl"
#: What AUTHENTICATE accepts. EXTERNAL (the TLS client certificate, RFC 4422 appendix A) is
#: listed on every connection, as Ergo does: one without a certificate is answered 904.
#: SCRAM-SHA-256 (RFC 7677, fastchat/server/scram.py) proves the password without sending it
MECHANISMS = (b"PLAIN", b"EXTERNAL", b"SCRAM-SHA-256")

CAPABILITY = Capability(NAME, value=b",".join(MECHANISMS), doc=__doc__ or "")
