"""Demo content of the hub, loaded by `smartregion serve --demo` into a hub without objects.

Organisations, profiles, use cases, challenges, solutions, initiatives and stories are invented
for the demonstration (Flemish municipalities are real places; what is told about them is not).
The funding instruments are the ones the strategy names, described in outline and marked
`demo: true`: amounts, rates and dates are indicative — always check the funder's official call.
"""

from __future__ import annotations

import logging
from typing import Any

from smartregion.errors import SmartRegionError
from smartregion.governance import Principal
from smartregion.hub.objects import Hub
from smartregion.hub.usecases import UseCases
from smartregion.storage.hub import HubQuery

__all__ = ["DEMO_ORGANISATIONS", "DEMO_SUPPLIER", "load_hub_demo"]

log = logging.getLogger("smartregion.hub")

#: (id, name, kind, NIS code)
DEMO_ORGANISATIONS = [
    ("gent", "Stad Gent", "municipality", "44021"),
    ("leuven", "Stad Leuven", "municipality", "24062"),
    ("kortrijk", "Stad Kortrijk", "municipality", "34022"),
    ("genk", "Stad Genk", "municipality", "71016"),
    ("mechelen", "Stad Mechelen", "municipality", "12025"),
    ("provincie-limburg", "Provincie Limburg", "province", "70000"),
    ("parkwise", "Parkwise BV (demo)", "company", None),
    ("luchtlab", "LuchtLab NV (demo)", "company", None),
    ("datavorm", "Datavorm BV (demo)", "company", None),
    ("kenniscentrum-stad", "Kenniscentrum Slimme Stad (demo)", "knowledge_institution", None),
    ("buurtnetwerk", "Buurtnetwerk Vlaanderen vzw (demo)", "citizens_organisation", None),
]
#: a supplier's employee who can sign in to the portal (id, e-mail, name, organisation, role);
#: the password is the demo people's (smartregion.broker.demo.DEMO_PASSWORD)
DEMO_SUPPLIER = ("pieter", "pieter@demo.smartregion.be", "Pieter Janssens", "parkwise", "editor")


def t(nl: str, en: str) -> dict[str, str]:
    """A bilingual text."""
    return {"nl": nl, "en": en}


ACTORS: list[tuple[str, dict[str, Any]]] = [
    (
        "gent",
        {
            "helix_role": "government",
            "title": t("Stad Gent", "City of Ghent"),
            "summary": t(
                "Centrumstad met een eigen datateam en open-dataportaal.",
                "Regional city with its own data team and open data portal.",
            ),
            "offers": t(
                "Ervaring met verkeerstellingen en een publiek dataplatform.",
                "Experience with traffic counts and a public data platform.",
            ),
            "seeks": t(
                "Partners voor hittestress-metingen in de binnenstad.",
                "Partners to measure heat stress in the city centre.",
            ),
            "terms": ["nis:44021", "domain:mobility", "domain:environment"],
        },
    ),
    (
        "parkwise",
        {
            "helix_role": "industry",
            "title": t("Parkwise", "Parkwise"),
            "summary": t(
                "Parkeersensoren en een parkeer-API voor steden.",
                "Parking sensors and a parking API for cities.",
            ),
            "offers": t(
                "Sensoren, installatie en NGSI-LD-koppeling.",
                "Sensors, installation and an NGSI-LD connection.",
            ),
            "seeks": t(
                "Steden die een pilootproject willen opzetten.", "Cities ready for a pilot."
            ),
            "terms": ["domain:mobility.parking", "vloca:field"],
        },
    ),
    (
        "kenniscentrum-stad",
        {
            "helix_role": "knowledge",
            "title": t("Kenniscentrum Slimme Stad", "Smart City Knowledge Centre"),
            "summary": t(
                "Onderzoek naar datagedreven beleid en evaluatie.",
                "Research on data-driven policy and evaluation.",
            ),
            "offers": t(
                "Begeleiding van proeftuinen en impactmeting.",
                "Living lab support and impact measurement.",
            ),
            "terms": ["block:human-capital", "block:data-technology"],
        },
    ),
    (
        "buurtnetwerk",
        {
            "helix_role": "civil_society",
            "title": t("Buurtnetwerk Vlaanderen", "Neighbourhood Network Flanders"),
            "summary": t(
                "Burgers die zelf meten: luchtkwaliteit, geluid, verkeer.",
                "Citizens who measure for themselves: air, noise, traffic.",
            ),
            "seeks": t(
                "Steden die burgermetingen in hun beleid gebruiken.",
                "Cities that use citizen measurements in their policy.",
            ),
            "terms": ["domain:people.participation", "block:quadruple-helix"],
        },
    ),
]

FUNDING: list[tuple[str, dict[str, Any]]] = [
    (
        "smart-cities-call",
        {
            "title": t("Oproep Slimme Steden en Gemeenten", "Smart Cities and Municipalities Call"),
            "summary": t(
                "Jaarlijkse Vlaamse oproep voor slimme-stadprojecten van lokale besturen, samen met partners; ongeveer € 3,8 miljoen per oproep.",
                "Yearly Flemish call for smart city projects of local governments with partners; about €3.8 million per call.",
            ),
            "funder": "Vlaamse overheid",
            "level": "flemish",
            "eligible_applicants": ["municipality"],
            "eligible_partners": ["company", "knowledge_institution", "citizens_organisation"],
            "co_financing": [{"funder": "Vlaamse overheid", "rate": 0.5}],
            "min_own_contribution": 0.5,
            "max_amount": 3_800_000,
            "duration_months": 24,
            "state_aid": "not_state_aid",
            "calls": [
                {
                    "opens": "2027-01-15",
                    "deadline": "2027-04-30",
                    "note": t("Indicatieve timing", "Indicative timing"),
                }
            ],
            "terms": ["block:financing", "domain:government"],
            "demo": True,
        },
    ),
    (
        "efro-erdf",
        {
            "title": t(
                "EFRO – Europees Fonds voor Regionale Ontwikkeling",
                "ERDF – European Regional Development Fund",
            ),
            "summary": t(
                "Europese cofinanciering voor innovatie, digitalisering en duurzame stedelijke ontwikkeling in Vlaanderen.",
                "European co-financing for innovation, digitalisation and sustainable urban development in Flanders.",
            ),
            "funder": "Europese Unie",
            "level": "european",
            "eligible_applicants": [
                "municipality",
                "province",
                "region",
                "knowledge_institution",
                "company",
            ],
            "co_financing": [
                {"funder": "Europese Unie", "rate": 0.4},
                {"funder": "Vlaamse overheid", "rate": 0.2},
            ],
            "min_own_contribution": 0.4,
            "duration_months": 36,
            "state_aid": "gber",
            "calls": [{"opens": "2027-02-01", "deadline": "2027-06-15"}],
            "terms": ["block:financing", "sdg:11", "sdg:9"],
            "demo": True,
        },
    ),
    (
        "interreg",
        {
            "title": t("Interreg", "Interreg"),
            "summary": t(
                "Grensoverschrijdende samenwerking (bijvoorbeeld Vlaanderen-Nederland) rond gedeelde uitdagingen.",
                "Cross-border cooperation (e.g. Flanders-Netherlands) on shared challenges.",
            ),
            "funder": "Europese Unie",
            "level": "european",
            "eligible_applicants": [
                "municipality",
                "province",
                "knowledge_institution",
                "company",
                "citizens_organisation",
            ],
            "co_financing": [{"funder": "Europese Unie", "rate": 0.6}],
            "min_own_contribution": 0.4,
            "duration_months": 36,
            "calls": [{"deadline": "2027-03-31"}],
            "terms": ["block:financing", "block:quadruple-helix", "sdg:17"],
            "demo": True,
        },
    ),
    (
        "pio",
        {
            "title": t(
                "PIO – Programma Innovatieve Overheidsopdrachten",
                "PIO – Innovative Public Procurement Programme",
            ),
            "summary": t(
                "Cofinanciering voor overheden die innovatie aankopen via innovatieve overheidsopdrachten.",
                "Co-financing for public bodies that buy innovation through innovative public procurement.",
            ),
            "funder": "Vlaamse overheid",
            "level": "flemish",
            "eligible_applicants": ["municipality", "province", "region"],
            "co_financing": [{"funder": "Vlaamse overheid", "rate": 0.5}],
            "min_own_contribution": 0.5,
            "calls": [{"deadline": "2027-05-31"}],
            "terms": ["block:financing", "domain:economy.innovation"],
            "demo": True,
        },
    ),
    (
        "coock",
        {
            "title": t("COOCK+", "COOCK+"),
            "summary": t(
                "Collectief onderzoek en kennisverspreiding naar groepen bedrijven, met kennisinstellingen.",
                "Collective research and knowledge transfer to groups of companies, with knowledge institutions.",
            ),
            "funder": "VLAIO",
            "level": "flemish",
            "eligible_applicants": ["knowledge_institution"],
            "eligible_partners": ["company"],
            "co_financing": [{"funder": "VLAIO", "rate": 0.8}],
            "duration_months": 48,
            "calls": [{"deadline": "2027-03-01"}],
            "terms": ["block:human-capital", "domain:economy.innovation"],
            "demo": True,
        },
    ),
    (
        "hermesfonds",
        {
            "title": t("Hermesfonds-cofinanciering", "Hermes Fund co-financing"),
            "summary": t(
                "Vlaamse cofinanciering van (onder meer) Europese projecten van bedrijven en kennisinstellingen.",
                "Flemish co-financing of (among others) European projects of companies and knowledge institutions.",
            ),
            "funder": "VLAIO",
            "level": "flemish",
            "eligible_applicants": ["company", "knowledge_institution"],
            "co_financing": [{"funder": "VLAIO", "rate": 0.25}],
            "state_aid": "de_minimis",
            "terms": ["block:financing"],
            "demo": True,
        },
    ),
]

USE_CASES: list[tuple[str, str, dict[str, Any]]] = [
    (
        "slim-parkeren-gent",
        "gent",
        {
            "title": t("Slim parkeren in de binnenstad", "Smart parking in the city centre"),
            "summary": t(
                "Sensoren melden vrije plaatsen; bewoners en bezoekers zien ze in de stadsapp.",
                "Sensors report free spaces; residents and visitors see them in the city app.",
            ),
            "maturity": "implemented",
            "achievements": t(
                "15 % minder zoekverkeer in het centrum.", "15% less search traffic in the centre."
            ),
            "obstacles": t(
                "Sensoren op kasseien raakten los; de leverancier moest bevestiging aanpassen.",
                "Sensors on cobblestones came loose; the supplier had to change the mounting.",
            ),
            "missed_opportunities": t(
                "De data werd pas laat opengesteld voor andere diensten.",
                "The data was opened to other services only late.",
            ),
            "terms": [
                "domain:mobility.parking",
                "nis:44021",
                "sdg:11.2",
                "vloca:field",
                "vloca:data-broker",
            ],
        },
    ),
    (
        "luchtmeetnet-burgers",
        "leuven",
        {
            "title": t("Burgermeetnet luchtkwaliteit", "Citizen air quality network"),
            "summary": t(
                "Honderd burgers meten fijnstof aan hun gevel; de stad gebruikt de kaart in haar luchtplan.",
                "A hundred citizens measure particulate matter on their facade; the city uses the map in its air plan.",
            ),
            "maturity": "scaled",
            "achievements": t(
                "Schoolstraten op basis van meetdata.", "School streets based on measurements."
            ),
            "obstacles": t(
                "Kalibratie van goedkope sensoren vroeg een referentiestation.",
                "Calibrating low-cost sensors needed a reference station.",
            ),
            "terms": [
                "domain:environment.air",
                "domain:people.participation",
                "nis:24062",
                "sdg:3.9",
                "sdg:11.6",
                "block:quadruple-helix",
            ],
        },
    ),
    (
        "digitale-tweeling-kortrijk",
        "kortrijk",
        {
            "title": t(
                "Digitale tweeling voor het stadscentrum", "Digital twin of the city centre"
            ),
            "summary": t(
                "3D-model met verkeers- en luchtdata om herinrichtingen vooraf te toetsen.",
                "3D model with traffic and air data to test redesigns beforehand.",
            ),
            "maturity": "proof_of_concept",
            "obstacles": t(
                "Data van verschillende diensten had geen gemeenschappelijk model.",
                "Data of different departments had no common model.",
            ),
            "terms": [
                "domain:government.digital-twin",
                "nis:34022",
                "vloca:applications",
                "block:data-technology",
            ],
        },
    ),
    (
        "hittekaart-genk",
        "genk",
        {
            "title": t("Hittestresskaart", "Heat stress map"),
            "summary": t(
                "Temperatuursensoren en satellietbeelden tonen waar de stad vergroenen moet.",
                "Temperature sensors and satellite images show where the city must plant greenery.",
            ),
            "maturity": "pilot",
            "terms": ["domain:environment.climate", "nis:71016", "sdg:13.1", "sdg:11.7"],
        },
    ),
    (
        "deelfietsen-data",
        "mechelen",
        {
            "title": t("Deelfietsdata voor beleid", "Shared-bike data for policy"),
            "summary": t(
                "Ritten van deelfietsen tonen waar fietspaden ontbreken.",
                "Shared-bike trips show where cycle paths are missing.",
            ),
            "maturity": "idea",
            "terms": ["domain:mobility.shared", "nis:12025", "sdg:11.2"],
        },
    ),
]

CHALLENGES: list[tuple[str, str, dict[str, Any]]] = [
    (
        "zoekverkeer-leuven",
        "leuven",
        {
            "title": t(
                "Minder zoekverkeer naar parkeerplaatsen", "Less traffic searching for parking"
            ),
            "problem": t(
                "Bezoekers rijden rondjes in de binnenstad; dat geeft file en slechte lucht in smalle straten.",
                "Visitors circle the city centre; this causes congestion and poor air in narrow streets.",
            ),
            "affected_groups": t(
                "Bewoners van de binnenstad, handelaars, bezoekers.",
                "City centre residents, shopkeepers, visitors.",
            ),
            "status": "open",
            "budget_min": 50_000,
            "budget_max": 150_000,
            "timeline_start": "2027-03-01",
            "timeline_end": "2027-12-31",
            "terms": ["domain:mobility.parking", "nis:24062", "sdg:11.2"],
            "min_maturity": "implemented",
            "quantity": 400,
            "unit": "parkeerplaatsen",
        },
    ),
    (
        "parkeerzoekverkeer-kortrijk",
        "kortrijk",
        {
            "title": t(
                "Zoekverkeer naar parkeerplaatsen in het centrum",
                "Traffic searching for parking in the centre",
            ),
            "problem": t(
                "Bezoekers zoeken lang naar een vrije parkeerplaats; het zoekverkeer zorgt voor file in de binnenstad.",
                "Visitors search a long time for a free parking space; the searching causes congestion in the city centre.",
            ),
            "affected_groups": t(
                "Handelaars en bezoekers van de binnenstad.",
                "City centre shopkeepers and visitors.",
            ),
            "status": "open",
            "budget_max": 90_000,
            "min_maturity": "pilot",
            "quantity": 250,
            "unit": "parkeerplaatsen",
            "terms": ["domain:mobility.parking", "nis:34022", "sdg:11.2"],
        },
    ),
    (
        "hitte-scholen",
        "genk",
        {
            "title": t("Hitte in klaslokalen", "Heat in classrooms"),
            "problem": t(
                "In warme weken wordt het in oudere scholen te heet om les te geven.",
                "In hot weeks older schools become too hot to teach in.",
            ),
            "affected_groups": t("Leerlingen en leerkrachten.", "Pupils and teachers."),
            "status": "open",
            "budget_max": 80_000,
            "co_owners": ["provincie-limburg"],
            "quantity": 12,
            "unit": "scholen",
            "terms": [
                "domain:environment.climate",
                "domain:people.education",
                "nis:71016",
                "sdg:13.1",
            ],
        },
    ),
    (
        "eenzaamheid-ouderen",
        "mechelen",
        {
            "title": t(
                "Eenzaamheid bij ouderen opmerken", "Noticing loneliness among older people"
            ),
            "problem": t(
                "Alleenwonende ouderen vallen uit beeld tot er iets misloopt.",
                "Older people living alone drop out of sight until something goes wrong.",
            ),
            "status": "in_progress",
            "budget_min": 20_000,
            "budget_max": 60_000,
            "terms": [
                "domain:living.health",
                "domain:people.digital-inclusion",
                "nis:12025",
                "sdg:3",
            ],
        },
    ),
]

SOLUTIONS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "parkwise-sensor",
        "parkwise",
        {
            "title": t("Parkwise parkeersensor", "Parkwise parking sensor"),
            "summary": t(
                "Draadloze bodemsensor met NGSI-LD ParkingSpot-data.",
                "Wireless ground sensor publishing NGSI-LD ParkingSpot data.",
            ),
            "maturity": "scaled",
            "pricing_model": "subscription",
            "price_min": 8,
            "price_max": 15,
            "description": t(
                "Per plaats per maand, installatie inbegrepen.",
                "Per space per month, installation included.",
            ),
            "deployments": [{"municipality": "nis:44021", "organisation": "gent", "year": 2024}],
            "terms": ["domain:mobility.parking", "vloca:field", "vloca:connectivity"],
        },
    ),
    (
        "luchtlab-kit",
        "luchtlab",
        {
            "title": t("LuchtLab meetkit", "LuchtLab measurement kit"),
            "summary": t(
                "Gekalibreerde fijnstofsensor voor burgers en scholen.",
                "Calibrated particulate sensor for citizens and schools.",
            ),
            "maturity": "implemented",
            "pricing_model": "one_off",
            "price_min": 120,
            "price_max": 180,
            "deployments": [{"municipality": "nis:24062", "year": 2025}],
            "terms": ["domain:environment.air", "domain:people.participation", "vloca:field"],
        },
    ),
    (
        "datavorm-twin",
        "datavorm",
        {
            "title": t("Datavorm tweelingplatform", "Datavorm twin platform"),
            "summary": t(
                "Open-sourceplatform voor digitale tweelingen op NGSI-LD.",
                "Open source digital twin platform on NGSI-LD.",
            ),
            "maturity": "pilot",
            "pricing_model": "open_source",
            "terms": [
                "domain:government.digital-twin",
                "vloca:applications",
                "vloca:data-platform",
            ],
        },
    ),
]

INITIATIVES: list[tuple[str, str, dict[str, Any]]] = [
    (
        "slimme-binnenstad-leuven",
        "leuven",
        {
            "title": t("Slimme binnenstad Leuven", "Smart city centre Leuven"),
            "summary": t(
                "Parkeersensoren en een burgermeetnet in één dataplatform.",
                "Parking sensors and a citizen network on one data platform.",
            ),
            "status": "running",
            "partners": ["parkwise", "kenniscentrum-stad"],
            "start": "2026-01-01",
            "end": "2027-12-31",
            "budget": 420_000,
            "milestones": [
                {
                    "title": t("Sensoren geplaatst", "Sensors installed"),
                    "due": "2026-06-30",
                    "done": True,
                },
                {"title": t("Evaluatierapport", "Evaluation report"), "due": "2027-09-30"},
            ],
            "funding": [
                {"funder": "Vlaamse overheid", "instrument": "smart-cities-call", "amount": 210_000}
            ],
            "use_cases": ["luchtmeetnet-burgers"],
            "terms": [
                "domain:mobility.parking",
                "domain:environment.air",
                "nis:24062",
                "block:quadruple-helix",
            ],
        },
    ),
    (
        "klimaatrobuust-limburg",
        "provincie-limburg",
        {
            "title": t("Klimaatrobuust Limburg", "Climate-resilient Limburg"),
            "summary": t(
                "Hittekaarten en vergroening in Limburgse centrumsteden.",
                "Heat maps and greening in Limburg's regional cities.",
            ),
            "status": "planned",
            "partners": ["genk"],
            "start": "2027-01-01",
            "end": "2029-12-31",
            "budget": 1_200_000,
            "funding": [
                {"funder": "Europese Unie", "instrument": "efro-erdf", "amount": 480_000},
                {"funder": "Vlaamse overheid", "instrument": "efro-erdf", "amount": 240_000},
            ],
            "use_cases": ["hittekaart-genk"],
            "terms": ["domain:environment.climate", "nis:70000", "sdg:13"],
        },
    ),
    (
        "tweeling-kortrijk",
        "kortrijk",
        {
            "title": t("Digitale tweeling Kortrijk", "Kortrijk digital twin"),
            "status": "completed",
            "partners": ["datavorm"],
            "start": "2024-01-01",
            "end": "2025-12-31",
            "budget": 300_000,
            "funding": [{"funder": "Europese Unie", "instrument": "interreg", "amount": 180_000}],
            "use_cases": ["digitale-tweeling-kortrijk"],
            "terms": ["domain:government.digital-twin", "nis:34022"],
        },
    ),
]

STORIES: list[tuple[str, str, dict[str, Any]]] = [
    (
        "fatima-meet-de-lucht",
        "leuven",
        {
            "title": t(
                "Fatima meet de lucht in haar straat", "Fatima measures the air in her street"
            ),
            "summary": t(
                "Hoe een buurtbewoonster mee de schoolstraat op de kaart zette.",
                "How a resident helped put the school street on the map.",
            ),
            "body": t(
                "Fatima hing twee jaar geleden een meetkastje aan haar gevel. Vandaag is haar straat een schoolstraat: de cijfers overtuigden de gemeenteraad.",
                "Two years ago Fatima hung a small sensor on her facade. Today her street is a school street: the figures convinced the council.",
            ),
            "status": "published",
            "published_on": "2026-05-12",
            "use_cases": ["luchtmeetnet-burgers"],
            "terms": ["domain:environment.air", "domain:people.participation", "nis:24062"],
        },
    ),
    (
        "nooit-meer-rondjes",
        "gent",
        {
            "title": t("Nooit meer rondjes rijden", "No more driving in circles"),
            "summary": t(
                "Een handelaar over de parkeersensoren voor zijn deur.",
                "A shopkeeper on the parking sensors outside his door.",
            ),
            "body": t(
                "Sinds de app toont waar er plaats is, vinden klanten sneller de weg naar de winkel.",
                "Since the app shows where there is space, customers find their way to the shop faster.",
            ),
            "status": "published",
            "published_on": "2026-09-03",
            "use_cases": ["slim-parkeren-gent"],
            "terms": ["domain:mobility.parking", "domain:economy.retail", "nis:44021"],
        },
    ),
]


async def load_hub_demo(hub: Hub, *, owner: str, password: str | None = None) -> int:
    """Load the demo content when the hub holds no objects yet; returns how many were created.

    The funding instruments are owned by `owner` (the platform's default organisation, registered
    as a region when absent); everything else by the demo organisations.

    Restarting with `--demo` never overwrites what users changed; a failure leaves what was
    loaded and is logged (the rest of the platform runs without the demo). With a `password`, the
    supplier's employee `DEMO_SUPPLIER` can sign in to the portal with it.
    """
    store = hub.store
    for kind in ("actor", "usecase", "funding", "story"):
        if (await store.query_hub_objects(HubQuery(kind, limit=1))).total:
            return 0
    operator = Principal.cli()
    created = 0
    try:
        if await hub.governance.store.get_organisation(owner) is None:
            await hub.governance.create_organisation(operator, owner, owner, "region")
        for org_id, name, kind, nis in DEMO_ORGANISATIONS:
            if await hub.governance.store.get_organisation(org_id) is None:
                try:
                    await hub.governance.create_organisation(operator, org_id, name, kind, nis=nis)
                except SmartRegionError:  # e.g. another organisation holds this NIS code
                    await hub.governance.create_organisation(operator, org_id, name, kind)
        if password is not None:
            person_id, email, name, org_id, role = DEMO_SUPPLIER
            if await hub.governance.store.get_person(person_id) is None:
                await hub.governance.create_person(operator, person_id, email, name, password)
            await hub.governance.set_membership(operator, person_id, org_id, role)
        batches: list[tuple[str, list[tuple[str, str, dict[str, Any]]]]] = [
            ("actor", [(f"actor-{o}", o, f) for o, f in ACTORS]),
            ("funding", [(i, owner, f) for i, f in FUNDING]),
            ("usecase", USE_CASES),
            ("challenge", CHALLENGES),
            ("solution", SOLUTIONS),
            ("initiative", INITIATIVES),
            ("story", STORIES),
        ]
        for kind, items in batches:
            for object_id, owner, fields in items:
                await hub.create(operator, kind, dict(fields), object_id=object_id, owner=owner)
                created += 1
        await _endorse_and_adopt(hub)
    except SmartRegionError as exc:
        log.warning("hub demo content only partly loaded: %s", exc)
    return created


async def _endorse_and_adopt(hub: Hub) -> None:
    usecases = UseCases(hub)
    for org, usecase in (
        ("leuven", "slim-parkeren-gent"),
        ("kortrijk", "slim-parkeren-gent"),
        ("genk", "luchtmeetnet-burgers"),
        ("gent", "luchtmeetnet-burgers"),
        ("mechelen", "luchtmeetnet-burgers"),
    ):
        await usecases.endorse(Principal(org_id=org, role="editor"), usecase)
    operator = Principal.cli()
    for usecase, nis, stage in (
        ("slim-parkeren-gent", "nis:24062", "interested"),
        ("slim-parkeren-gent", "nis:24062", "piloting"),
        ("slim-parkeren-gent", "nis:34022", "interested"),
        ("luchtmeetnet-burgers", "nis:44021", "piloting"),
        ("luchtmeetnet-burgers", "nis:12025", "rolled_out"),
    ):
        await usecases.set_adoption(operator, usecase, nis, stage)
