"""The ODRL policy evaluator: examples, fail-closed cases, and hypothesis against a reference."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartregion.core.policies import (
    ORGANISATION_KINDS,
    AccessContext,
    evaluate,
    open_policy,
    private_policy,
    restricted_policy,
    validate_policy,
)
from smartregion.errors import BadRequestData

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def ctx(
    action: str = "read",
    org: str | None = "uni",
    kind: str | None = "knowledge_institution",
    purpose: str | None = None,
    at: datetime = NOW,
) -> AccessContext:
    return AccessContext(action=action, at=at, org_id=org, org_kind=kind, purpose=purpose)


def policy(*permissions: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "@context": "http://www.w3.org/ns/odrl.jsonld",
        "@type": "Set",
        "uid": "p",
        "permission": list(permissions),
        **extra,
    }


def test_open_policy_lets_anyone_read_but_not_write() -> None:
    p = open_policy("p", "ds")
    assert evaluate(p, ctx(org=None, kind=None))
    assert evaluate(p, ctx())
    assert not evaluate(p, ctx(action="write"))


def test_private_policy_grants_nothing() -> None:
    assert not evaluate(private_policy("p"), ctx())


def test_assignee_by_org_and_by_kind() -> None:
    by_org = policy({"action": "read", "assignee": "uni"})
    assert evaluate(by_org, ctx())
    assert not evaluate(by_org, ctx(org="other"))
    assert not evaluate(by_org, ctx(org=None, kind=None))
    assert evaluate(policy({"action": "read", "assignee": {"uid": "uni"}}), ctx())
    by_kind = policy(
        {"action": ["read", "write"], "assignee": {"kind": ["municipality", "province"]}}
    )
    assert evaluate(by_kind, ctx(org="ghent", kind="municipality", action="write"))
    assert not evaluate(by_kind, ctx())


def test_purpose_and_date_constraints() -> None:
    p = policy(
        {
            "action": "read",
            "assignee": "uni",
            "constraint": [
                {
                    "leftOperand": "purpose",
                    "operator": "isAnyOf",
                    "rightOperand": ["research", "teaching"],
                },
                {
                    "leftOperand": "dateTime",
                    "operator": "gteq",
                    "rightOperand": "2026-01-01T00:00:00Z",
                },
                {
                    "leftOperand": "dateTime",
                    "operator": "lt",
                    "rightOperand": "2027-01-01T00:00:00+01:00",
                },
            ],
        }
    )
    assert evaluate(p, ctx(purpose="research"))
    assert not evaluate(p, ctx(purpose="marketing"))
    assert not evaluate(p, ctx(purpose=None))
    assert not evaluate(p, ctx(purpose="research", at=datetime(2027, 1, 1, tzinfo=UTC)))
    assert not evaluate(p, ctx(purpose="research", at=datetime(2025, 12, 31, tzinfo=UTC)))


@pytest.mark.parametrize(
    "bad",
    [
        policy({"action": "read"}, prohibition=[{"action": "read"}]),  # unknown member
        policy({"action": "read", "duty": [{"action": "attribute"}]}),  # a duty
        policy({"action": "use"}),  # unknown action
        policy({"action": ["read", "distribute"]}),  # one unknown action
        policy({"action": "read", "assignee": {"group": "x"}}),  # unknown assignee form
        policy({"action": "read", "assignee": {"kind": "alien"}}),  # unknown kind
        policy(
            {
                "action": "read",
                "constraint": [{"leftOperand": "spatial", "operator": "eq", "rightOperand": "BE"}],
            }
        ),  # unknown operand
        policy(
            {
                "action": "read",
                "constraint": [
                    {
                        "leftOperand": "dateTime",
                        "operator": "neq",
                        "rightOperand": "2026-01-01T00:00:00Z",
                    }
                ],
            }
        ),
        policy(
            {
                "action": "read",
                "constraint": [
                    {
                        "leftOperand": "dateTime",
                        "operator": "lt",
                        "rightOperand": "2030-01-01T00:00:00",
                    }
                ],
            }
        ),  # naive
        policy(
            {
                "action": "read",
                "constraint": [
                    {"leftOperand": "purpose", "operator": "eq", "rightOperand": "x", "unit": "y"}
                ],
            }
        ),
        {**policy({"action": "read"}), "@type": "Prohibition"},
        policy({"action": "read", "constraint": {"leftOperand": "purpose"}}),
    ],
)
def test_anything_not_understood_denies_and_is_refused(bad: dict[str, Any]) -> None:
    assert not evaluate(bad, ctx(purpose="x"))
    with pytest.raises(BadRequestData):
        validate_policy(bad)


def test_unknown_request_action_denies() -> None:
    assert not evaluate(open_policy("p", "ds"), ctx(action="delete"))


def test_restricted_policy_validates() -> None:
    p = restricted_policy("p", [{"action": "read", "assignee": {"kind": "company"}}])
    assert evaluate(p, ctx(org="acme", kind="company"))
    with pytest.raises(BadRequestData):
        restricted_policy("p", [{"action": "read", "assignee": 42}])


# --- property: the evaluator agrees with a deliberately simple reference ------------------------

ORGS = ["uni", "ghent", "acme"]
PURPOSES = ["research", "traffic", "marketing"]
TIMES = [
    "2026-01-01T00:00:00Z",
    "2026-11-27T12:00:00Z",
    "2027-06-01T00:00:00+02:00",
    "2026-11-27T12:00:00",
    "not a time",
]

assignees = st.one_of(
    st.sampled_from(ORGS),
    st.builds(lambda o: {"uid": o}, st.sampled_from(ORGS)),
    st.builds(lambda k: {"kind": k}, st.sampled_from([*ORGANISATION_KINDS, "alien"])),
    st.builds(lambda ks: {"kind": ks}, st.lists(st.sampled_from(ORGANISATION_KINDS), max_size=2)),
    st.just({"group": "x"}),
    st.just(7),
)
constraints = st.one_of(
    st.fixed_dictionaries(
        {
            "leftOperand": st.just("purpose"),
            "operator": st.sampled_from(["eq", "neq"]),
            "rightOperand": st.sampled_from(PURPOSES),
        }
    ),
    st.fixed_dictionaries(
        {
            "leftOperand": st.just("purpose"),
            "operator": st.just("isAnyOf"),
            "rightOperand": st.lists(st.sampled_from(PURPOSES), max_size=2),
        }
    ),
    st.fixed_dictionaries(
        {
            "leftOperand": st.just("dateTime"),
            "operator": st.sampled_from(["lt", "lteq", "gt", "gteq", "eq"]),
            "rightOperand": st.sampled_from(TIMES),
        }
    ),
    st.fixed_dictionaries(
        {
            "leftOperand": st.sampled_from(["spatial", "count"]),
            "operator": st.just("eq"),
            "rightOperand": st.just("x"),
        }
    ),
)
permissions = st.builds(
    lambda action, assignee, cons, duty: {
        "action": action,
        **({"assignee": assignee} if assignee is not None else {}),
        **({"constraint": cons} if cons is not None else {}),
        **({"duty": [{"action": "attribute"}]} if duty else {}),
    },
    st.one_of(
        st.sampled_from(["read", "write", "use"]),
        st.lists(st.sampled_from(["read", "write", "use"]), max_size=2),
    ),
    st.one_of(st.none(), assignees),
    st.one_of(st.none(), st.lists(constraints, max_size=3)),
    st.booleans(),
)
policies = st.builds(
    lambda perms, extra: {
        "@type": "Set",
        "uid": "p",
        "permission": perms,
        **({"prohibition": []} if extra else {}),
    },
    st.lists(permissions, max_size=3),
    st.booleans(),
)
contexts = st.builds(
    ctx,
    action=st.sampled_from(["read", "write", "use"]),
    org=st.one_of(st.none(), st.sampled_from(ORGS)),
    kind=st.one_of(st.none(), st.sampled_from(ORGANISATION_KINDS)),
    purpose=st.one_of(st.none(), st.sampled_from(PURPOSES)),
    at=st.sampled_from([NOW, NOW - timedelta(days=400), NOW + timedelta(days=400)]),
)


def reference(pol: dict[str, Any], c: AccessContext) -> bool:
    """Spelled out case by case; any doubt is a deny."""
    if "prohibition" in pol or c.action not in ("read", "write"):
        return False
    for perm in pol["permission"]:
        if "duty" in perm:
            continue
        actions = perm["action"] if isinstance(perm["action"], list) else [perm["action"]]
        if (
            not actions
            or any(a not in ("read", "write") for a in actions)
            or c.action not in actions
        ):
            continue
        if "assignee" in perm:
            a = perm["assignee"]
            if c.org_id is None:
                continue
            if isinstance(a, str):
                if a != c.org_id:
                    continue
            elif isinstance(a, dict) and list(a) == ["uid"]:
                if a["uid"] != c.org_id:
                    continue
            elif isinstance(a, dict) and list(a) == ["kind"]:
                kinds = a["kind"] if isinstance(a["kind"], list) else [a["kind"]]
                if (
                    not kinds
                    or any(k not in ORGANISATION_KINDS for k in kinds)
                    or c.org_kind not in kinds
                ):
                    continue
            else:
                continue
        ok = True
        for con in perm.get("constraint", []):
            left, op, right = con["leftOperand"], con["operator"], con["rightOperand"]
            if left == "purpose" and op == "eq":
                ok = ok and c.purpose == right
            elif left == "purpose" and op == "isAnyOf":
                ok = ok and bool(right) and c.purpose in right
            elif left == "dateTime" and op in ("lt", "lteq", "gt", "gteq"):
                try:
                    bound = datetime.fromisoformat(right)
                except ValueError:
                    ok = False
                    continue
                if bound.tzinfo is None:
                    ok = False
                    continue
                ok = (
                    ok
                    and {
                        "lt": c.at < bound,
                        "lteq": c.at <= bound,
                        "gt": c.at > bound,
                        "gteq": c.at >= bound,
                    }[op]
                )
            else:
                ok = False
        if ok:
            return True
    return False


@settings(max_examples=2000, deadline=None)
@given(policies, contexts)
def test_evaluator_agrees_with_the_reference(pol: dict[str, Any], c: AccessContext) -> None:
    assert evaluate(pol, c) == reference(pol, c)


@settings(max_examples=500, deadline=None)
@given(
    policies,
    contexts,
    st.sampled_from(
        [
            {"leftOperand": "spatial", "operator": "eq", "rightOperand": "BE"},
            {"leftOperand": "purpose", "operator": "startsWith", "rightOperand": "r"},
            {"leftOperand": "dateTime", "operator": "lt", "rightOperand": "soon"},
        ]
    ),
)
def test_an_unknown_constraint_never_grants(
    pol: dict[str, Any], c: AccessContext, unknown: dict[str, Any]
) -> None:
    # fail closed: adding a constraint the evaluator does not understand to every permission
    # turns every decision into a deny (it is never ignored)
    for perm in pol["permission"]:
        perm["constraint"] = [*perm.get("constraint", []), unknown]
    assert not evaluate(pol, c)
    if pol["permission"]:
        with pytest.raises(BadRequestData):
            validate_policy(pol)
