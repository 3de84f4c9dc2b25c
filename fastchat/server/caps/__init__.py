"""IRCv3 capabilities: one module per capability, found and registered here.

Owns: :data:`CAPABILITIES`, the registry CAP LS/REQ/ACK/LIST read (see :mod:`.registry`).
Every module in this package (other than ``registry``) that defines ``CAPABILITY`` offers it;
adding a capability is adding one file here. Must never: hold a capability's logic.
"""

from __future__ import annotations

import importlib
import pkgutil

from fastchat.server.caps.registry import Capability, Meta, Registry

__all__ = ["CAPABILITIES", "Capability", "Meta", "Registry", "discover"]


def discover() -> Registry:
    """A registry of every ``CAPABILITY`` declared in this package's modules."""
    found: list[Capability] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name == "registry" or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        cap = getattr(module, "CAPABILITY", None)
        if isinstance(cap, Capability):
            found.append(cap)
    return Registry(found)


#: The capabilities this server offers.
CAPABILITIES = discover()
