"""The admin API's endpoints under /api/v1: parse, call the governance service, render."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from smartregion.api.admin.auth import authenticate
from smartregion.api.admin.models import (
    AccessRequestIn,
    ApproveIn,
    DatasetIn,
    IssuedKeyOut,
    KeyIn,
    KeyOut,
    MandateIn,
    OrganisationIn,
    PolicyIn,
    PrivacyIn,
)
from smartregion.governance import Governance, Principal
from smartregion.storage.governance import (
    AccessRequest,
    Agreement,
    Dataset,
    Grant,
    Mandate,
    Organisation,
)
from smartregion.storage.ingestion import DeadLetter

router = APIRouter()

Caller = Annotated[Principal, Depends(authenticate)]


def _gov(request: Request) -> Governance:
    governance: Governance = request.app.state.governance
    return governance


Gov = Annotated[Governance, Depends(_gov)]


# --- organisations ---------------------------------------------------------------------------


@router.get("/organisations", tags=["organisations"])
async def list_organisations(caller: Caller, gov: Gov) -> list[Organisation]:
    """Every organisation."""
    return await gov.list_organisations()


@router.post("/organisations", status_code=201, tags=["organisations"])
async def create_organisation(body: OrganisationIn, caller: Caller, gov: Gov) -> Organisation:
    """Register an organisation (admins of the platform organisation)."""
    return await gov.create_organisation(
        caller, body.id, body.name, body.kind, kbo=body.kbo, nis=body.nis
    )


@router.get("/organisations/{org_id}", tags=["organisations"])
async def get_organisation(org_id: str, caller: Caller, gov: Gov) -> Organisation:
    """One organisation."""
    return await gov.get_organisation(org_id)


# --- keys ------------------------------------------------------------------------------------


@router.get("/organisations/{org_id}/keys", tags=["keys"])
async def list_keys(org_id: str, caller: Caller, gov: Gov) -> list[KeyOut]:
    """An organisation's keys (its admins)."""
    return [KeyOut.of(k) for k in await gov.list_api_keys(caller, org_id)]


@router.post("/organisations/{org_id}/keys", status_code=201, tags=["keys"])
async def create_key(org_id: str, body: KeyIn, caller: Caller, gov: Gov) -> IssuedKeyOut:
    """Issue a key; the response is the only time the key is shown."""
    issued = await gov.create_api_key(
        caller, org_id, role=body.role, expires_at=body.expires_at, label=body.label
    )
    return IssuedKeyOut(**KeyOut.of(issued.record).model_dump(), key=issued.key)


@router.delete("/keys/{key_id}", status_code=204, tags=["keys"])
async def revoke_key(key_id: str, caller: Caller, gov: Gov) -> Response:
    """Revoke a key (refused from the next request on; the record stays)."""
    await gov.revoke_api_key(caller, key_id)
    return Response(status_code=204)


# --- data sets -------------------------------------------------------------------------------


@router.get("/datasets", tags=["datasets"])
async def list_datasets(caller: Caller, gov: Gov, owner: str | None = None) -> list[Dataset]:
    """Data sets the caller may know of (private ones: their owner only), optionally of one owner."""
    return await gov.visible_datasets(caller, owner_org=owner)


@router.post("/datasets", status_code=201, tags=["datasets"])
async def create_dataset(body: DatasetIn, caller: Caller, gov: Gov) -> Dataset:
    """Describe a data set and its access policy (the owner's admins)."""
    return await gov.create_dataset(
        caller,
        body.id,
        body.owner,
        body.title,
        body.entity_types,
        description=body.description,
        scope=body.scope,
        theme=body.theme,
        license=body.license,
        policy=body.policy,
        permissions=body.permissions,
        retention_days=body.retention_days,
        rollup_retention_days=body.rollup_retention_days,
        privacy=body.privacy,
    )


@router.get("/datasets/{dataset_id}", tags=["datasets"])
async def get_dataset(dataset_id: str, caller: Caller, gov: Gov) -> Dataset:
    """One data set (a private one of another organisation: 404)."""
    return await gov.visible_dataset(caller, dataset_id)


@router.put("/datasets/{dataset_id}/policy", tags=["datasets"])
async def set_policy(dataset_id: str, body: PolicyIn, caller: Caller, gov: Gov) -> Dataset:
    """Change a data set's access policy (the owner's admins; audited)."""
    return await gov.set_dataset_policy(caller, dataset_id, body.policy, body.permissions)


@router.put("/datasets/{dataset_id}/privacy", tags=["datasets"])
async def set_privacy(dataset_id: str, body: PrivacyIn, caller: Caller, gov: Gov) -> Dataset:
    """Classify a data set's attributes and set its open-view rules (the owner's admins; audited)."""
    return await gov.set_dataset_privacy(caller, dataset_id, body.privacy)


# --- mandates --------------------------------------------------------------------------------


@router.get("/organisations/{org_id}/mandates", tags=["mandates"])
async def list_mandates(org_id: str, caller: Caller, gov: Gov) -> list[Mandate]:
    """Mandates an organisation gave or received."""
    return await gov.list_mandates(caller, org_id)


@router.get("/organisations/{org_id}/dead-letters", tags=["ingestion"])
async def list_dead_letters(
    org_id: str, caller: Caller, gov: Gov, tenant: str | None = None, limit: int = 100
) -> list[DeadLetter]:
    """What the MQTT bridge could not ingest for the organisation (its members), newest first."""
    return await gov.dead_letters(caller, org_id, tenant=tenant, limit=limit)


@router.post("/mandates", status_code=201, tags=["mandates"])
async def create_mandate(body: MandateIn, caller: Caller, gov: Gov) -> Mandate:
    """Mandate another organisation to write into the owner's data sets (owner's admins)."""
    return await gov.create_mandate(caller, body.owner, body.mandated, dataset_id=body.dataset)


@router.delete("/mandates/{mandate_id}", status_code=204, tags=["mandates"])
async def revoke_mandate(mandate_id: str, caller: Caller, gov: Gov) -> Response:
    """Revoke a mandate."""
    await gov.revoke_mandate(caller, mandate_id)
    return Response(status_code=204)


# --- access in trust -------------------------------------------------------------------------


@router.post("/access-requests", status_code=201, tags=["access"])
async def request_access(body: AccessRequestIn, caller: Caller, gov: Gov) -> AccessRequest:
    """Ask a data set's owner for access (editors, for their own organisation)."""
    return await gov.request_access(
        caller, body.dataset, body.purpose, start=body.start, end=body.end
    )


@router.get("/access-requests", tags=["access"])
async def list_access_requests(caller: Caller, gov: Gov) -> list[AccessRequest]:
    """Requests the caller's organisation made or received."""
    return await gov.list_access_requests(caller, caller.org_id)


@router.get("/access-requests/{request_id}", tags=["access"])
async def get_access_request(request_id: str, caller: Caller, gov: Gov) -> AccessRequest:
    """One request (both parties)."""
    return await gov.get_access_request(caller, request_id)


@router.post("/access-requests/{request_id}/approve", status_code=201, tags=["access"])
async def approve(
    request_id: str, caller: Caller, gov: Gov, body: ApproveIn | None = None
) -> dict[str, Agreement | Grant]:
    """Approve: creates the agreement (frozen policy) and the grant."""
    agreement, grant = await gov.approve_access_request(
        caller, request_id, expires_at=body.expires_at if body else None
    )
    return {"agreement": agreement, "grant": grant}


@router.post("/access-requests/{request_id}/refuse", tags=["access"])
async def refuse(request_id: str, caller: Caller, gov: Gov) -> AccessRequest:
    """Refuse a pending request."""
    return await gov.refuse_access_request(caller, request_id)


@router.get("/agreements/{agreement_id}", tags=["access"])
async def get_agreement(agreement_id: str, caller: Caller, gov: Gov) -> Agreement:
    """One agreement (both parties)."""
    return await gov.get_agreement(caller, agreement_id)


@router.get("/grants", tags=["access"])
async def list_grants(caller: Caller, gov: Gov) -> list[Grant]:
    """Grants the caller's organisation holds or gave."""
    return await gov.list_grants(caller, caller.org_id)


@router.delete("/grants/{grant_id}", status_code=204, tags=["access"])
async def revoke_grant(grant_id: str, caller: Caller, gov: Gov) -> Response:
    """Revoke a grant (the data set owner's admins)."""
    await gov.revoke_grant(caller, grant_id)
    return Response(status_code=204)
