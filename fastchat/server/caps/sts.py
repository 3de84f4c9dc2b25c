"""IRCv3 ``sts`` (https://ircv3.net/specs/extensions/sts): Strict Transport Security, the
server's promise that it speaks TLS, which a client keeps and then connects with TLS only.

Owns: the capability's declaration and its value, which depends on the connection: a plain
one is told where TLS is (``port=<TLS port>``: the client reconnects there), a TLS one the
policy (``duration=<seconds>[,preload]``), from ``--sts-duration`` and ``--sts-preload``.
Listed only when a policy is configured and the server has a TLS port, and only to clients
that asked ``CAP LS 302`` (the policy is in the value, which older ones do not see); never requested
(the spec: clients MUST NOT; a REQ of it is refused with NAK).
Must never: decide whether the certificate is good enough for a policy. The supervisor
refuses to start with ``--sts-duration`` and the self-signed certificate (a client that
keeps the policy and verifies certificates, as the spec asks, could then never connect:
``runtime/tls.py``'s ``check_sts``).
"""

from __future__ import annotations

from typing import Any

from fastchat.server.caps.registry import Capability

NAME = b"sts"


def _value(config: Any, client: Any) -> bytes | None:
    if config.sts_duration < 0 or config.tls_port <= 0:
        return None
    if client is not None and client.secure:
        return b"duration=%d" % config.sts_duration + (b",preload" if config.sts_preload else b"")
    return b"port=%d" % config.tls_port


CAPABILITY = Capability(NAME, listed_for=_value, requestable=False, doc=__doc__ or "")
