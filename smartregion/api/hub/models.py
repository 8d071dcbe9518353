"""Request and response bodies of the hub API (pydantic: validation and the OpenAPI schema).

Every text shown to people is `{"nl": …, "en": …}` (one of them at least where it is required).
Strings refuse NUL and unpaired surrogates (neither can be stored or rendered as JSON); numbers
are finite; lists are bounded — bad input is a 400 before any service is called.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

__all__ = ["IN_MODELS", "OUT_MODELS"]


def _clean(value: str) -> str:
    if "\x00" in value:
        raise ValueError("text may not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode (no unpaired surrogates)") from None
    return value


Text = Annotated[str, AfterValidator(_clean)]
Short = Annotated[str, Field(min_length=1, max_length=300), AfterValidator(_clean)]
Long = Annotated[str, Field(max_length=20_000), AfterValidator(_clean)]
OrgId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
ObjectId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{1,99}$")]
DatasetId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,255}$")]
TermId = Annotated[
    str, Field(pattern=r"^[a-z_]+:[a-z0-9._-]{1,80}$", description="a taxonomy term id")
]
Url = Annotated[str, Field(pattern=r"^https?://[^\s\x00]{1,2000}$")]
Email = Annotated[str, Field(pattern=r"^[^@\s\x00]{1,64}@[^@\s\x00]{1,255}\.[^@\s\x00]{2,63}$")]
Amount = Annotated[float, Field(ge=0, le=1e12, allow_inf_nan=False, description="euros")]
Rate = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False, description="a fraction, 0 to 1")]
Day = Annotated[date, Field(ge=date(1900, 1, 1), le=date(2200, 12, 31))]
Maturity = Literal["idea", "pilot", "proof_of_concept", "implemented", "scaled"]
OrganisationKind = Literal[
    "municipality",
    "province",
    "region",
    "company",
    "knowledge_institution",
    "citizens_organisation",
]

_FORBID = ConfigDict(extra="forbid", allow_inf_nan=False)


class Texts(BaseModel):
    """A text in Dutch and/or English (at least one)."""

    model_config = _FORBID
    nl: Long | None = None
    en: Long | None = None

    @model_validator(mode="after")
    def _one(self) -> Texts:
        if not (self.nl or "").strip() and not (self.en or "").strip():
            raise ValueError("give the text in nl and/or en")
        return self


class Title(Texts):
    """A title in Dutch and/or English."""

    nl: Short | None = None
    en: Short | None = None


class OptionalTexts(BaseModel):
    """A text in Dutch and/or English, or none."""

    model_config = _FORBID
    nl: Long | None = None
    en: Long | None = None


class Contact(BaseModel):
    """Whom to contact."""

    model_config = _FORBID
    name: Short | None = None
    email: Email | None = None
    phone: Annotated[str, Field(pattern=r"^\+?[0-9 ()./-]{6,30}$")] | None = None
    url: Url | None = None


class _Object(BaseModel):
    """What every hub object has."""

    model_config = _FORBID
    title: Title
    summary: OptionalTexts = Field(default_factory=OptionalTexts)
    terms: list[TermId] = Field(
        default_factory=list,
        max_length=200,
        description="taxonomy terms: domain:…, sdg:…, block:…, vloca:…, nis:<NIS code>",
    )
    contact: Contact | None = None


class _Create(BaseModel):
    """Create-only members."""

    id: ObjectId | None = Field(None, description="chosen id (default: made from the title)")
    owner: OrgId | None = Field(None, description="owning organisation (default: the caller's)")


class _Stored(BaseModel):
    """What the hub adds to a stored object."""

    id: str
    kind: str
    owner: str
    created_at: str
    updated_at: str


# --- actors ------------------------------------------------------------------------------------


class Actor(_Object):
    """An organisation's profile: its place in the quadruple helix, what it offers and seeks."""

    helix_role: Literal["government", "industry", "knowledge", "civil_society"]
    offers: OptionalTexts = Field(default_factory=OptionalTexts)
    seeks: OptionalTexts = Field(default_factory=OptionalTexts)
    website: Url | None = None


class ActorIn(Actor, _Create):
    """A new actor profile (one per organisation; its id is `actor-<organisation>`)."""


class ActorOut(Actor, _Stored):
    """An actor profile."""


# --- initiatives -------------------------------------------------------------------------------


class Milestone(BaseModel):
    """A step of an initiative."""

    model_config = _FORBID
    title: Title
    due: Day | None = None
    done: bool = False


class FundingSource(BaseModel):
    """Money an initiative receives (from a funding instrument of the hub, or another funder)."""

    model_config = _FORBID
    funder: Short
    instrument: ObjectId | None = Field(None, description="a funding instrument's id")
    amount: Amount = 0


class Initiative(_Object):
    """A running or planned project of the portfolio."""

    status: Literal["planned", "running", "completed", "stopped"]
    partners: list[OrgId] = Field(default_factory=list, max_length=100)
    start: Day | None = None
    end: Day | None = None
    milestones: list[Milestone] = Field(default_factory=list, max_length=100)
    budget: Amount | None = None
    funding: list[FundingSource] = Field(default_factory=list, max_length=50)
    use_cases: list[ObjectId] = Field(default_factory=list, max_length=100)
    datasets: list[DatasetId] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _dates(self) -> Initiative:
        if self.start and self.end and self.end < self.start:
            raise ValueError("end is before start")
        return self


class InitiativeIn(Initiative, _Create):
    """A new initiative (its owner is its lead)."""


class InitiativeOut(Initiative, _Stored):
    """An initiative."""


# --- use cases ---------------------------------------------------------------------------------


class UseCase(_Object):
    """A good practice or lighthouse: what it achieved and what was learnt."""

    maturity: Maturity
    achievements: OptionalTexts = Field(default_factory=OptionalTexts)
    obstacles: OptionalTexts = Field(default_factory=OptionalTexts, description="obstacles met")
    missed_opportunities: OptionalTexts = Field(default_factory=OptionalTexts)
    datasets: list[DatasetId] = Field(default_factory=list, max_length=100)
    initiatives: list[ObjectId] = Field(default_factory=list, max_length=100)


class UseCaseIn(UseCase, _Create):
    """A new use case."""


class UseCaseOut(UseCase, _Stored):
    """A use case with the number of local governments that endorse it."""

    endorsements: int = 0


# --- challenges --------------------------------------------------------------------------------


class Challenge(_Object):
    """A societal problem in the municipality's own words (demand)."""

    status: Literal["open", "in_progress", "matched", "closed"]
    problem: Texts
    affected_groups: OptionalTexts = Field(default_factory=OptionalTexts)
    budget_min: Amount | None = None
    budget_max: Amount | None = None
    timeline_start: Day | None = None
    timeline_end: Day | None = None
    co_owners: list[OrgId] = Field(default_factory=list, max_length=100)
    min_maturity: Maturity | None = Field(
        None, description="the least mature solution accepted (matching's maturity rule)"
    )
    quantity: Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False)] | None = Field(
        None, description="how much is needed, in `unit` (added up in joint purchases)"
    )
    unit: Short | None = Field(None, description='the unit of `quantity`, e.g. "parking sensors"')

    @model_validator(mode="after")
    def _ranges(self) -> Challenge:
        if (
            self.budget_min is not None
            and self.budget_max is not None
            and self.budget_max < self.budget_min
        ):
            raise ValueError("budget_max is below budget_min")
        if self.timeline_start and self.timeline_end and self.timeline_end < self.timeline_start:
            raise ValueError("timeline_end is before timeline_start")
        return self


class ChallengeIn(Challenge, _Create):
    """A new challenge."""


class ChallengeOut(Challenge, _Stored):
    """A challenge."""


# --- solutions ---------------------------------------------------------------------------------


class Deployment(BaseModel):
    """Where a solution runs (a reference)."""

    model_config = _FORBID
    municipality: TermId | None = Field(None, description="nis:<NIS code>")
    organisation: OrgId | None = None
    year: Annotated[int, Field(ge=1990, le=2100)] | None = None
    description: OptionalTexts = Field(default_factory=OptionalTexts)


class Solution(_Object):
    """A company's product or service (supply)."""

    maturity: Maturity
    description: OptionalTexts = Field(default_factory=OptionalTexts)
    pricing_model: Literal["one_off", "subscription", "usage_based", "free", "open_source", "other"]
    price_min: Amount | None = None
    price_max: Amount | None = None
    deployments: list[Deployment] = Field(default_factory=list, max_length=200)

    @model_validator(mode="after")
    def _prices(self) -> Solution:
        if (
            self.price_min is not None
            and self.price_max is not None
            and self.price_max < self.price_min
        ):
            raise ValueError("price_max is below price_min")
        return self


class SolutionIn(Solution, _Create):
    """A new solution."""


class SolutionOut(Solution, _Stored):
    """A solution."""


# --- funding instruments -----------------------------------------------------------------------


class CoFinancing(BaseModel):
    """The share of eligible costs one funder pays."""

    model_config = _FORBID
    funder: Short
    rate: Rate


class Call(BaseModel):
    """A call window of a funding instrument."""

    model_config = _FORBID
    opens: Day | None = None
    deadline: Day
    note: OptionalTexts = Field(default_factory=OptionalTexts)

    @model_validator(mode="after")
    def _window(self) -> Call:
        if self.opens and self.deadline < self.opens:
            raise ValueError("deadline is before opens")
        return self


class Funding(_Object):
    """A funding instrument: who pays what, for whom, when to apply."""

    funder: Short
    level: Literal["flemish", "belgian", "european"]
    eligibility: OptionalTexts = Field(default_factory=OptionalTexts)
    eligible_applicants: list[OrganisationKind] = Field(default_factory=list, max_length=6)
    eligible_partners: list[OrganisationKind] = Field(default_factory=list, max_length=6)
    co_financing: list[CoFinancing] = Field(default_factory=list, max_length=20)
    min_own_contribution: Rate | None = None
    max_amount: Amount | None = None
    duration_months: Annotated[int, Field(ge=1, le=240)] | None = None
    calls: list[Call] = Field(default_factory=list, max_length=100)
    state_aid: Literal["de_minimis", "gber", "not_state_aid", "other"] | None = None
    url: Url | None = None
    demo: bool = Field(False, description="demo content: illustrative, not an official record")


class FundingIn(Funding, _Create):
    """A new funding instrument."""


class FundingOut(Funding, _Stored):
    """A funding instrument."""


# --- stories -----------------------------------------------------------------------------------


class Story(_Object):
    """A plain-language, human-interest story ("Slimme Stad in Mensentaal")."""

    status: Literal["published", "archived"]
    body: Texts
    published_on: Day | None = None
    use_cases: list[ObjectId] = Field(default_factory=list, max_length=100)
    initiatives: list[ObjectId] = Field(default_factory=list, max_length=100)


class StoryIn(Story, _Create):
    """A new story."""


class StoryOut(Story, _Stored):
    """A story."""


#: kind -> (model of a new object, model of a replacement, response model)
IN_MODELS: dict[str, tuple[type[_Create], type[_Object]]] = {
    "actor": (ActorIn, Actor),
    "initiative": (InitiativeIn, Initiative),
    "usecase": (UseCaseIn, UseCase),
    "challenge": (ChallengeIn, Challenge),
    "solution": (SolutionIn, Solution),
    "funding": (FundingIn, Funding),
    "story": (StoryIn, Story),
}
OUT_MODELS: dict[str, type[_Stored]] = {
    "actor": ActorOut,
    "initiative": InitiativeOut,
    "usecase": UseCaseOut,
    "challenge": ChallengeOut,
    "solution": SolutionOut,
    "funding": FundingOut,
    "story": StoryOut,
}


# --- the rest ----------------------------------------------------------------------------------


class FacetValue(BaseModel):
    """One value of a facet and how many matches have it."""

    value: str
    count: int
    label: dict[str, str] | None = None


class EndorsementOut(BaseModel):
    """A local government's endorsement of a use case."""

    org_id: str
    at: str


class AdoptionIn(BaseModel):
    """A municipality's stage in taking up a use case."""

    model_config = _FORBID
    stage: Literal["interested", "piloting", "rolled_out"]
    note: Annotated[str, Field(max_length=2000), AfterValidator(_clean)] = ""


class AdoptionOut(BaseModel):
    """A current adoption."""

    municipality: str
    label: dict[str, str]
    stage: str
    updated_at: str


class AdoptionEventOut(BaseModel):
    """One change of an adoption (stage null: withdrawn)."""

    municipality: str
    stage: str | None
    at: str
    note: str


class AdoptionsOut(BaseModel):
    """A use case's adoptions and their history (scale-up over time)."""

    current: list[AdoptionOut]
    history: list[AdoptionEventOut]


class TermOut(BaseModel):
    """A taxonomy term."""

    id: str
    scheme: str
    label: dict[str, str]
    parent: str | None
    replaced_by: str | None = None
    children: list[str] = Field(default_factory=list)


class SchemeOut(BaseModel):
    """A scheme of the taxonomy."""

    scheme: str
    prefix: str
    terms: int
    roots: list[str]


KindName = Literal["actor", "initiative", "usecase", "challenge", "solution", "funding", "story"]


class FollowIn(BaseModel):
    """Follow a taxonomy term, a kind's key (e.g. `funder:vlaio`) or an object."""

    model_config = _FORBID
    target: Annotated[
        str,
        Field(
            pattern=r"^[a-z0-9_]+(:[a-z0-9._-]{1,80})?$|^[a-z0-9][a-z0-9-]{1,99}$",
            description="a term or key (prefix:code) or an object id",
        ),
    ]
    email: Email
    frequency: Literal["daily", "weekly"] = "weekly"
    lang: Literal["nl", "en"] = "nl"
    kinds: list[KindName] = Field(
        default_factory=list, max_length=7, description="only these kinds"
    )


class FollowOut(BaseModel):
    """A follow."""

    id: str
    org_id: str
    email: str
    target: str
    frequency: str
    lang: str
    kinds: list[str]
    created_at: str
    last_sent_at: str


class MatchOut(BaseModel):
    """An object the follow's next digest reports."""

    id: str
    kind: str
    owner: str
    title: dict[str, str]
    updated_at: str
    new: bool
    #: a solution the matcher ranks best for the followed challenge (or a challenge for it)
    matched: bool = False


class DismissalIn(BaseModel):
    """Mark an object "not relevant" for a follow."""

    model_config = _FORBID
    object_id: ObjectId


class DismissalOut(BaseModel):
    """A recorded "not relevant"."""

    object_id: str
    at: str
