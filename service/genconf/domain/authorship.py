"""Who made a write: what its branch, versions and generation record, and what the
API passes to the store (`genconf.security.auth.authorship` decides it per call)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Authorship:
    """``created_by`` is verified only when ``authenticated``; ``on_behalf_of`` is what
    the client sent as created_by when the server records the token instead."""

    created_by: str = ""
    on_behalf_of: str = ""
    authenticated: bool = False

    def fields(self) -> dict[str, Any]:
        """The three fields, as stored in a document and as the store's keyword arguments."""
        return {
            "created_by": self.created_by,
            "on_behalf_of": self.on_behalf_of,
            "authenticated": self.authenticated,
        }
