"""Request and response bodies of the admin API (pydantic: validation and the OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from smartregion.storage.governance import ApiKey

OrganisationKind = Literal[
    "municipality",
    "province",
    "region",
    "company",
    "knowledge_institution",
    "citizens_organisation",
]
Role = Literal["reader", "editor", "admin"]
PolicyKind = Literal["open", "restricted", "private"]
Theme = Literal["mobility", "environment", "living", "people", "government", "economy"]


class _In(BaseModel):
    # an unknown member is a client mistake (a misspelt `expires_at` must not silently mean
    # "never expires"): refuse it
    model_config = ConfigDict(extra="forbid")


class OrganisationIn(_In):
    """A new organisation."""

    id: str = Field(
        description="lower-case letters, digits, . _ - (also the owner name of entities)"
    )
    name: str
    kind: OrganisationKind
    kbo: str | None = Field(None, description="KBO/BCE enterprise number (mod-97 checked)")
    nis: str | None = Field(None, description="NIS code (municipalities and provinces)")


class KeyIn(_In):
    """A new service-account key."""

    role: Role = "editor"
    expires_at: datetime | None = Field(
        None, description="ISO 8601 with an offset; none: no expiry"
    )
    label: str = ""


class KeyOut(BaseModel):
    """A key's record: never the key or its hash."""

    id: str
    org_id: str
    role: str
    label: str
    created_at: str
    expires_at: str | None
    revoked_at: str | None

    @classmethod
    def of(cls, key: ApiKey) -> KeyOut:
        """The public view of a key record."""
        return cls(
            id=key.id,
            org_id=key.org_id,
            role=key.role,
            label=key.label,
            created_at=key.created_at,
            expires_at=key.expires_at,
            revoked_at=key.revoked_at,
        )


class IssuedKeyOut(KeyOut):
    """A key just created: `key` is shown this once and never again."""

    key: str


PRIVACY_HELP = (
    'attribute classes and open-view rules: {"personal": [names], "sensitive": [names], '
    '"counts": [names], "k": 5, "coarsenTime": seconds, "coarsenPlace": metres} (docs/security.md)'
)


class DatasetIn(_In):
    """A new data set."""

    id: str
    owner: str
    title: str | dict[str, str] = Field(description='text, or {"nl": …, "en": …}')
    description: str | dict[str, str] | None = None
    entity_types: list[str] = Field(min_length=1)
    scope: str | None = None
    theme: Theme | None = None
    license: str | None = None
    policy: PolicyKind = "private"
    permissions: list[dict[str, Any]] | None = Field(
        None, description="ODRL permissions of a restricted data set (docs/security.md)"
    )
    retention_days: int | None = Field(
        None, ge=0, description="days of attribute history kept (none: the default; 0: forever)"
    )
    rollup_retention_days: int | None = Field(
        None, ge=0, description="days roll-ups are kept (none: the default; 0: as raw history)"
    )
    privacy: dict[str, Any] | None = Field(None, description=PRIVACY_HELP)


class PrivacyIn(_In):
    """A data set's attribute classes and open-view rules (docs/security.md, Privacy)."""

    privacy: dict[str, Any] = Field(description=PRIVACY_HELP)


class PolicyIn(_In):
    """A data set's new access policy."""

    policy: PolicyKind
    permissions: list[dict[str, Any]] | None = None


class MandateIn(_In):
    """`owner` lets `mandated` write into its data sets (one, or all)."""

    owner: str
    mandated: str
    dataset: str | None = None


class AccessRequestIn(_In):
    """A request for access to another organisation's data set."""

    dataset: str
    purpose: str
    start: datetime | None = None
    end: datetime | None = None


class ApproveIn(_In):
    """Approval options."""

    expires_at: datetime | None = Field(None, description="default: the requested period's end")
