"""Who is acting: a principal (an organisation and a role in it) and the role order."""

from __future__ import annotations

from dataclasses import dataclass

from smartregion.errors import SmartRegionError

__all__ = ["ROLES", "Forbidden", "Principal"]

#: roles in increasing power: each includes what the ones before it may do
ROLES = ("reader", "editor", "admin")


class Forbidden(SmartRegionError):
    """The caller is authenticated but may not do this (HTTP 403)."""

    error_type = "Forbidden"
    ngsi = False


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller acting for one organisation with one role."""

    org_id: str
    role: str
    key_id: str | None = None
    person_id: str | None = None
    #: an OIDC token's subject as a pseudonym (`oidc.pseudonym`), never the raw `sub`
    subject: str | None = None
    #: the local operator (the CLI): may do everything, including bootstrapping
    operator: bool = False

    @classmethod
    def cli(cls) -> Principal:
        """The operator at the command line."""
        return cls(org_id="", role="admin", operator=True)

    @property
    def actor(self) -> str:
        """How the audit log names this principal (ids only, no personal data)."""
        if self.operator:
            return "operator"
        if self.key_id:
            return f"key:{self.key_id}"
        if self.person_id:
            return f"person:{self.person_id}"
        if self.subject:
            return f"oidc:{self.subject}"
        return f"org:{self.org_id}"

    def has_role(self, role: str) -> bool:
        """Whether this principal's role includes `role`."""
        return ROLES.index(self.role) >= ROLES.index(role)

    def require(self, org_id: str, role: str) -> None:
        """Raise Forbidden unless this principal acts for `org_id` with at least `role`."""
        if self.operator:
            return
        if self.org_id != org_id or not self.has_role(role):
            raise Forbidden(f"needs the {role} role in organisation {org_id!r}")
