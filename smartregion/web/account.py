"""Accounts in the portal: password sign-in and sign-out, the organisation switch, and the
organisation admin page (members, API keys, data sets and policies, access requests, dead
letters). Every decision is the governance service's; these handlers parse, call and render."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from smartregion.errors import AlreadyExists, BadRequestData, ResourceNotFound, Unauthenticated
from smartregion.governance import POLICY_KINDS, ROLES, Forbidden, Principal
from smartregion.web.datasets import text_in
from smartregion.web.portal import LABELS, N_, Portal, Reader

__all__ = ["routes"]


def _local(target: str) -> str:
    """A redirect target on this site only (no open redirect: `//host` and `\\` are refused)."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _field(form: FormData, name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


#: the fields of the new-data-set form, with what it keeps when it is shown again
DATASET_FIELDS = ("id", "title_nl", "title_en", "types", "policy", "theme", "license",
                  "description_nl")  # fmt: skip


def dataset_form_errors(values: dict[str, str]) -> dict[str, str]:
    """The new-data-set form's own checks: field -> message (translated where shown)."""
    errors = {}
    if not values["id"]:
        errors["id"] = N_("Give the data set an identifier.")
    if not values["title_nl"] and not values["title_en"]:
        errors["title_nl"] = N_("Give the data set a title.")
    if not [t for t in values["types"].replace(",", " ").split() if t]:
        errors["types"] = N_("Name at least one entity type.")
    if values["policy"] not in POLICY_KINDS:
        errors["policy"] = N_("Choose who may read it.")
    if values["theme"] and values["theme"] not in LABELS["theme"]:
        errors["theme"] = N_("Choose a theme from the list.")
    return errors


def routes(portal: Portal) -> list[BaseRoute]:
    """The account routes."""
    governance = portal.governance

    def secure(request: Request) -> bool:
        return request.url.scheme == "https"

    async def sign_in_form(request: Request) -> Response:
        return await portal.render(
            request,
            "sign_in.html",
            {
                "next": _local(request.query_params.get("next", "/admin")),
                "email": "",
                "failed": False,
            },
        )

    async def sign_in(request: Request) -> Response:
        form = await request.form()
        email, target = _field(form, "email"), _local(_field(form, "next") or "/admin")
        try:
            person, memberships = await governance.sign_in(email, _field(form, "password"))
        except Unauthenticated:
            return await portal.render(
                request,
                "sign_in.html",
                {"next": target, "email": email, "failed": True},
                status=401,
            )
        session = portal.sessions.new(person.id, memberships[0].org_id)
        response = RedirectResponse(target, status_code=303)
        response.headers.append(
            "Set-Cookie", portal.sessions.cookie(session, secure=secure(request))
        )
        return response

    async def sign_out(request: Request) -> Response:
        response = RedirectResponse("/", status_code=303)
        response.headers.append("Set-Cookie", portal.sessions.cookie(None, secure=secure(request)))
        return response

    async def switch_organisation(request: Request) -> Response:
        reader = await _signed_in(portal, request)
        org_id = _field(await request.form(), "org")
        if org_id not in {o for o, _ in reader.organisations}:
            raise BadRequestData("you are no member of that organisation")
        assert reader.session is not None
        session = portal.sessions.new(reader.session.person_id, org_id)
        response = RedirectResponse("/admin", status_code=303)
        response.headers.append(
            "Set-Cookie", portal.sessions.cookie(session, secure=secure(request))
        )
        return response

    async def admin_page(
        request: Request,
        *,
        issued: Any = None,
        notice: str = "",
        dataset_form: dict[str, Any] | None = None,
        status: int = 200,
    ) -> Response:
        reader = await _signed_in(portal, request)
        principal = reader.principal
        assert principal is not None
        org_id = principal.org_id
        org = await governance.get_organisation(org_id)
        members = []
        for m in await governance.list_memberships(principal, org_id):
            person = await governance.store.get_person(m.person_id)
            members.append(
                {
                    "id": m.person_id,
                    "name": person.name if person else m.person_id,
                    "email": person.email if person else "",
                    "role": m.role,
                }
            )
        is_admin = principal.has_role("admin")
        keys = await governance.list_api_keys(principal, org_id) if is_admin else []
        requests = await governance.list_access_requests(principal, org_id)
        datasets = {d.id: d for d in await governance.list_datasets()}
        titles = {i: text_in(d.title, reader.lang) for i, d in datasets.items()}
        owned = [
            {
                "id": d.id,
                "title": titles[d.id],
                "policy": d.policy_kind,
                "license": d.license or "",
                "modified": d.modified_at,
            }
            for d in datasets.values()
            if d.owner_org == org_id
        ]
        return await portal.render(
            request,
            "admin.html",
            {
                "org": org,
                "members": members,
                "keys": keys,
                "is_admin": is_admin,
                "received": [r for r in requests if r.owner_org == org_id],
                "made": [
                    r for r in requests if r.requester_org == org_id and r.owner_org != org_id
                ],
                "titles": titles,
                "datasets": owned,
                "policies": POLICY_KINDS,
                "roles": ROLES,
                "dead_letters": await governance.dead_letters(principal, org_id, limit=50),
                "issued": issued,
                "notice": notice,
                "themes": list(LABELS["theme"]),
                "dataset_form": dataset_form
                or {"values": {"policy": "restricted"}, "errors": {}, "problem": ""},
            },
            status=status,
        )

    async def admin(request: Request) -> Response:
        return await admin_page(request, notice=request.query_params.get("done", ""))

    async def create_key(request: Request) -> Response:
        principal = await _principal(portal, request)
        form = await request.form()
        role = _field(form, "role") or "reader"
        issued = await governance.create_api_key(
            principal, principal.org_id, role=role, label=_field(form, "label")
        )
        # shown once, on this response only: never in a URL, a log or a later page
        response = await admin_page(request, issued=issued)
        response.headers["Cache-Control"] = "no-store"
        return response

    async def revoke_key(request: Request) -> Response:
        principal = await _principal(portal, request)
        await governance.revoke_api_key(principal, request.path_params["key_id"])
        return RedirectResponse("/admin?done=key-revoked#keys", status_code=303)

    async def decide(request: Request) -> Response:
        principal = await _principal(portal, request)
        request_id, decision = request.path_params["request_id"], request.path_params["decision"]
        if decision not in ("approve", "refuse"):
            raise ResourceNotFound(f"no decision {decision!r}: approve or refuse")
        if decision == "approve":
            await governance.approve_access_request(principal, request_id)
            done = "approved"
        else:
            await governance.refuse_access_request(principal, request_id)
            done = "refused"
        return RedirectResponse(f"/admin?done={done}#requests", status_code=303)

    async def create_dataset(request: Request) -> Response:
        principal = await _principal(portal, request)
        form = await request.form()
        values = {name: _field(form, name).strip() for name in DATASET_FIELDS}
        errors = dataset_form_errors(values)
        problem, status = "", 400
        if not errors:
            try:
                await governance.create_dataset(
                    principal, values["id"], principal.org_id,
                    {lang: values[f"title_{lang}"] for lang in ("nl", "en") if values[f"title_{lang}"]},
                    [t for t in values["types"].replace(",", " ").split() if t],
                    description={"nl": values["description_nl"]} if values["description_nl"] else None,
                    theme=values["theme"] or None, license=values["license"] or None,
                    policy=values["policy"],
                )  # fmt: skip
            except AlreadyExists:
                errors["id"] = N_("A data set with this identifier already exists.")
                status = 409
            except BadRequestData as exc:
                problem = exc.detail
            else:
                return RedirectResponse("/admin?done=dataset#datasets", status_code=303)
        return await admin_page(
            request,
            dataset_form={"values": values, "errors": errors, "problem": problem},
            status=status,
        )

    async def set_policy(request: Request) -> Response:
        principal = await _principal(portal, request)
        policy = _field(await request.form(), "policy")
        await governance.set_dataset_policy(principal, request.path_params["dataset_id"], policy)
        return RedirectResponse("/admin?done=policy#datasets", status_code=303)

    async def set_role(request: Request) -> Response:
        principal = await _principal(portal, request)
        role = _field(await request.form(), "role")
        await governance.set_membership(
            principal, request.path_params["person_id"], principal.org_id, role
        )
        return RedirectResponse("/admin?done=member#members", status_code=303)

    async def remove_member(request: Request) -> Response:
        principal = await _principal(portal, request)
        person_id = request.path_params["person_id"]
        if person_id == principal.person_id:
            raise BadRequestData("you cannot remove yourself; ask another admin")
        await governance.remove_membership(principal, person_id, principal.org_id)
        return RedirectResponse("/admin?done=member-removed#members", status_code=303)

    return [
        Route("/sign-in", sign_in_form, methods=["GET"]),
        Route("/sign-in", sign_in, methods=["POST"]),
        Route("/sign-out", sign_out, methods=["POST"]),
        Route("/account/organisation", switch_organisation, methods=["POST"]),
        Route("/admin", admin, methods=["GET"]),
        Route("/admin/members/{person_id}/role", set_role, methods=["POST"]),
        Route("/admin/members/{person_id}/remove", remove_member, methods=["POST"]),
        Route("/admin/keys", create_key, methods=["POST"]),
        Route("/admin/keys/{key_id}/revoke", revoke_key, methods=["POST"]),
        Route("/admin/requests/{request_id}/{decision:str}", decide, methods=["POST"]),
        Route("/admin/datasets", create_dataset, methods=["POST"]),
        Route("/admin/datasets/{dataset_id}/policy", set_policy, methods=["POST"]),
    ]


async def _signed_in(portal: Portal, request: Request) -> Reader:
    reader = await portal.reader(request)
    if reader.principal is None:
        raise Unauthenticated("sign in first")
    return reader


async def _principal(portal: Portal, request: Request) -> Principal:
    reader = await _signed_in(portal, request)
    assert reader.principal is not None
    if not reader.principal.has_role("admin"):
        raise Forbidden("this needs the admin role in your organisation")
    return reader.principal
