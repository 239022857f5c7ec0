from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from runplane.auth.principal import Principal
from runplane.config import Settings
from runplane.errors import Forbidden, Unauthenticated
from runplane.services import Services

if TYPE_CHECKING:
    from runplane.connection import Connection


@dataclass
class RequestContext:
    """What every resolver receives first: who calls, through which request, with which services."""

    services: Services
    principal: Principal | None = None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    user_agent: str = ""
    client_ip: str = ""
    # Set when the request carried a credential that failed: operations needing a user report it
    # instead of a plain "authentication required", while public ones (login) still work.
    auth_error: Exception | None = None
    # The HTTP request or WebSocket the call came in on (runplane/connection.py): its stream slot and the
    # credential it lives by. None outside a connection (CLI, tests): each stream then holds a slot of its own.
    connection: "Connection | None" = None

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def user_id(self) -> uuid.UUID:
        if self.principal is None or self.principal.user_id is None:
            if self.auth_error is not None:
                raise self.auth_error
            raise Unauthenticated("Authentication required")
        return self.principal.user_id

    def require(self, ability: str) -> uuid.UUID:
        """The caller's user id, once we know the token carries `ability`."""
        user_id = self.user_id
        assert self.principal is not None
        if not self.principal.can(ability):
            raise Forbidden(f"Token lacks the '{ability}' ability")
        return user_id

    def require_admin(self) -> None:
        if self.principal is None or not self.principal.can("admin"):
            raise Forbidden("Admin access required")
