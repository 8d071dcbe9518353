"""ODRL access policies over data sets: the documents we accept and a fail-closed evaluator.

A policy is an ODRL 2.2 JSON-LD document (https://www.w3.org/TR/odrl-model/) restricted to the
profile below. Only *permissions* are supported; they grant, nothing else does. Whatever the
evaluator does not understand — an unknown top-level member (a `prohibition`, an `obligation`),
an unknown action, a duty, an unknown constraint operand or operator, a malformed value — never
grants: a permission containing it is skipped, and a policy with an unknown top-level member
denies everything. Ignoring an unknown term would fail open (the pitfall EDC documents).

Profile (the compact terms of the ODRL core context)::

    {"@context": "http://www.w3.org/ns/odrl.jsonld", "@type": "Set", "uid": "…",
     "permission": [{
        "target": "urn:ngsi-ld:Dataset:…",             # informative
        "action": "read" | "write" | ["read", …],
        "assignee": "org-id" | {"uid": "org-id"} | {"kind": "company" | [kinds…]},
                                                       # absent: any party (open data)
        "constraint": [                                # all must hold (ODRL §2.5: and)
          {"leftOperand": "purpose", "operator": "eq" | "isAnyOf", "rightOperand": "…" | […]},
          {"leftOperand": "dateTime", "operator": "lt" | "lteq" | "gt" | "gteq",
           "rightOperand": "2027-01-01T00:00:00Z"}]}]}

The module is pure: no I/O, no clock (the caller passes the instant to decide at).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from smartregion.errors import BadRequestData

__all__ = [
    "ACTIONS",
    "ODRL_CONTEXT",
    "ORGANISATION_KINDS",
    "AccessContext",
    "evaluate",
    "open_policy",
    "parse_instant",
    "parse_purpose",
    "private_policy",
    "restricted_policy",
    "validate_policy",
]

ODRL_CONTEXT = "http://www.w3.org/ns/odrl.jsonld"

#: a declared purpose: a word or an IRI (a purpose constraint's right operand compares equal)
_PURPOSE = re.compile(r"[A-Za-z0-9._:/#-]{1,200}")

#: the actions a permission may name (ODRL core `read`; `write` from our profile)
ACTIONS = frozenset({"read", "write"})

#: the kinds of organisation a policy may name as assignee
ORGANISATION_KINDS = (
    "municipality",
    "province",
    "region",
    "company",
    "knowledge_institution",
    "citizens_organisation",
)

_POLICY_MEMBERS = frozenset({"@context", "@type", "uid", "permission", "profile", "target"})
_POLICY_TYPES = frozenset({"Set", "Offer", "Agreement", "Policy"})
_PERMISSION_MEMBERS = frozenset({"target", "action", "assignee", "constraint", "assigner"})
_CONSTRAINT_MEMBERS = frozenset({"leftOperand", "operator", "rightOperand"})
_PURPOSE_OPERATORS = frozenset({"eq", "isAnyOf"})
_TIME_OPERATORS = frozenset({"lt", "lteq", "gt", "gteq"})


@dataclass(frozen=True, slots=True)
class AccessContext:
    """Who asks to do what, why and when: the input of a policy decision."""

    action: str
    at: datetime
    #: the asking organisation (None: an anonymous caller)
    org_id: str | None = None
    org_kind: str | None = None
    purpose: str | None = None


def parse_instant(text: Any) -> datetime | None:
    """An ISO 8601 date-time WITH an offset, or None (a naive time is ambiguous: refused)."""
    if not isinstance(text, str):
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


def _as_list(value: Any) -> list[Any] | None:
    if isinstance(value, list):
        return value
    if isinstance(value, str | dict):
        return [value]
    return None


def _assignee_matches(assignee: Any, ctx: AccessContext) -> bool:
    if isinstance(assignee, str):
        return ctx.org_id is not None and assignee == ctx.org_id
    if not isinstance(assignee, dict) or len(assignee) != 1:
        return False
    ((key, value),) = assignee.items()
    if key == "uid":
        return isinstance(value, str) and ctx.org_id is not None and value == ctx.org_id
    if key == "kind":
        kinds = _as_list(value)
        if kinds is None or not kinds or not all(k in ORGANISATION_KINDS for k in kinds):
            return False
        return ctx.org_id is not None and ctx.org_kind in kinds
    return False


def _constraint_holds(constraint: Any, ctx: AccessContext) -> bool:
    if not isinstance(constraint, dict) or set(constraint) != _CONSTRAINT_MEMBERS:
        return False
    left, op, right = constraint["leftOperand"], constraint["operator"], constraint["rightOperand"]
    if left == "purpose":
        if op == "eq":
            return isinstance(right, str) and ctx.purpose is not None and ctx.purpose == right
        if op == "isAnyOf":
            if (
                not isinstance(right, list)
                or not right
                or not all(isinstance(r, str) for r in right)
            ):
                return False
            return ctx.purpose is not None and ctx.purpose in right
        return False
    if left == "dateTime" and op in _TIME_OPERATORS:
        bound = parse_instant(right)
        if bound is None or ctx.at.tzinfo is None:
            return False
        if op == "lt":
            return ctx.at < bound
        if op == "lteq":
            return ctx.at <= bound
        if op == "gt":
            return ctx.at > bound
        return ctx.at >= bound
    return False


def _permission_grants(permission: Any, ctx: AccessContext) -> bool:
    if not isinstance(permission, dict) or not set(permission) <= _PERMISSION_MEMBERS:
        return False  # e.g. a `duty` we cannot discharge: never grants
    actions = _as_list(permission.get("action"))
    if not actions or not all(isinstance(a, str) and a in ACTIONS for a in actions):
        return False
    if ctx.action not in actions:
        return False
    if "assignee" in permission and not _assignee_matches(permission["assignee"], ctx):
        return False
    constraints = permission.get("constraint", [])
    if not isinstance(constraints, list):
        return False
    return all(_constraint_holds(c, ctx) for c in constraints)


def evaluate(policy: Mapping[str, Any], ctx: AccessContext) -> bool:
    """Whether `policy` permits `ctx` (fail-closed: see the module docstring)."""
    if ctx.action not in ACTIONS or not isinstance(policy, Mapping):
        return False
    if not set(policy) <= _POLICY_MEMBERS:
        return False
    if "@type" in policy and policy["@type"] not in _POLICY_TYPES:
        return False
    permissions = policy.get("permission", [])
    if not isinstance(permissions, list):
        return False
    return any(_permission_grants(p, ctx) for p in permissions)


def validate_policy(policy: Any) -> dict[str, Any]:
    """Refuse (BadRequestData) a policy document with anything outside the profile."""
    if not isinstance(policy, dict):
        raise BadRequestData("a policy must be a JSON object")
    unknown = set(policy) - _POLICY_MEMBERS
    if unknown:
        raise BadRequestData(f"unsupported policy members: {sorted(unknown)}")
    if "@type" in policy and policy["@type"] not in _POLICY_TYPES:
        raise BadRequestData(f"unsupported policy type {policy['@type']!r}")
    permissions = policy.get("permission", [])
    if not isinstance(permissions, list):
        raise BadRequestData("`permission` must be a list")
    for permission in permissions:
        _validate_permission(permission)
    return policy


def _validate_permission(permission: Any) -> None:
    if not isinstance(permission, dict):
        raise BadRequestData("a permission must be a JSON object")
    unknown = set(permission) - _PERMISSION_MEMBERS
    if unknown:
        raise BadRequestData(f"unsupported permission members: {sorted(unknown)}")
    actions = _as_list(permission.get("action"))
    if not actions or not all(isinstance(a, str) and a in ACTIONS for a in actions):
        raise BadRequestData(f"a permission's action must be one or more of {sorted(ACTIONS)}")
    if "assignee" in permission:
        assignee = permission["assignee"]
        well_formed = isinstance(assignee, str) or (
            isinstance(assignee, dict)
            and len(assignee) == 1
            and (isinstance(assignee.get("uid"), str) or _kinds_ok(assignee.get("kind")))
        )
        if not well_formed:
            raise BadRequestData(
                'an assignee is an organisation id, {"uid": id} or {"kind": kind(s)} with kinds'
                f" from {list(ORGANISATION_KINDS)}"
            )
    constraints = permission.get("constraint", [])
    if not isinstance(constraints, list):
        raise BadRequestData("`constraint` must be a list")
    for constraint in constraints:
        _validate_constraint(constraint)


def _kinds_ok(value: Any) -> bool:
    kinds = _as_list(value)
    return bool(kinds) and all(k in ORGANISATION_KINDS for k in kinds or [])


def _validate_constraint(constraint: Any) -> None:
    if not isinstance(constraint, dict) or set(constraint) != _CONSTRAINT_MEMBERS:
        raise BadRequestData("a constraint has exactly leftOperand, operator and rightOperand")
    left, op, right = constraint["leftOperand"], constraint["operator"], constraint["rightOperand"]
    if left == "purpose":
        if op == "eq" and isinstance(right, str):
            return
        if (
            op == "isAnyOf"
            and isinstance(right, list)
            and right
            and all(isinstance(r, str) for r in right)
        ):
            return
        raise BadRequestData("a purpose constraint is `eq` a string or `isAnyOf` a list of strings")
    if left == "dateTime":
        if op in _TIME_OPERATORS and parse_instant(right) is not None:
            return
        raise BadRequestData(
            "a dateTime constraint is lt/lteq/gt/gteq an ISO 8601 date-time with an offset"
        )
    raise BadRequestData(f"unsupported constraint leftOperand {left!r}")


def _policy(uid: str, permissions: list[dict[str, Any]]) -> dict[str, Any]:
    return {"@context": ODRL_CONTEXT, "@type": "Set", "uid": uid, "permission": permissions}


def open_policy(uid: str, target: str) -> dict[str, Any]:
    """Anyone may read (open data, e.g. CC0 / CC-BY 4.0)."""
    return _policy(uid, [{"target": target, "action": "read"}])


def private_policy(uid: str) -> dict[str, Any]:
    """Nobody but the owner (who needs no permission) may read."""
    return _policy(uid, [])


def restricted_policy(uid: str, permissions: list[dict[str, Any]]) -> dict[str, Any]:
    """Only the given (validated) permissions."""
    return validate_policy(_policy(uid, permissions))


def parse_purpose(text: str | None) -> str | None:
    """A reader's declared purpose (None: none declared); BadRequestData when malformed."""
    if text is None or not text.strip():
        return None
    purpose = text.strip()
    if not _PURPOSE.fullmatch(purpose):
        raise BadRequestData(
            "a purpose is a word or an IRI of at most 200 letters, digits and . _ : / # -"
        )
    return purpose
