"""IRCv3 ``draft/account-registration``
(https://ircv3.net/specs/extensions/account-registration): ``REGISTER <account> <email>
<password>`` creates an account and logs the client in to it.

Owns: the capability's declaration and what its value promises: ``custom-account-name`` (the
account need not be the current nick), ``before-connect`` when the ``register_before_connect``
setting lets a connection register an account before it is registered itself, and
``email-required`` when ``register_requires_email`` does or ``register_verify`` (email
verification: ``REGISTER`` answers ``VERIFICATION_REQUIRED`` and ``VERIFY`` completes it) needs
an address to mail the code to. The commands are :mod:`fastchat.server.commands.accounts`.
"""

from __future__ import annotations

from typing import Any

from fastchat.server.caps.registry import Capability

NAME = b"draft/account-registration"


def _value(config: Any) -> bytes:
    flags = [b"custom-account-name"]
    if config.register_before_connect:
        flags.append(b"before-connect")
    if config.register_requires_email or config.register_verify:
        flags.append(b"email-required")
    return b",".join(flags)


CAPABILITY = Capability(NAME, value=b"custom-account-name", value_of=_value, doc=__doc__ or "")
