"""Governance: who may do what with whose data (organisations, accounts, keys, mandates, data
sets, ODRL policies, access requests, agreements, grants) and the hash-chained audit log."""

from __future__ import annotations

from smartregion.governance.ownership import WriteAccess
from smartregion.governance.principals import ROLES, Forbidden, Principal
from smartregion.governance.service import (
    DEFAULT_OPEN_LICENSE,
    POLICY_KINDS,
    THEMES,
    Governance,
    IssuedApiKey,
    iso,
    parse_time,
)
from smartregion.storage.governance import GovernanceStore

__all__ = [
    "DEFAULT_OPEN_LICENSE",
    "POLICY_KINDS",
    "ROLES",
    "THEMES",
    "Forbidden",
    "Governance",
    "GovernanceStore",
    "IssuedApiKey",
    "Principal",
    "WriteAccess",
    "iso",
    "parse_time",
]
