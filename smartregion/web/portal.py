"""The portal's frame: templates per language, the reader (language, session, principal), the
one mapping of domain errors to HTML error pages, and the ASGI app that `create_app` mounts at /.

Pages are server-rendered and readable without JavaScript; htmx, Leaflet and uPlot (vendored in
`static/vendor/`) only improve them. Every page is rendered by `Portal.render`, which gives the
templates the reader's language, translations, formats and the CSRF token for forms.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from smartregion import __version__, errors
from smartregion.broker.service import Broker
from smartregion.governance import Forbidden, Governance, Principal
from smartregion.hub.matchmaking import Matchmaking
from smartregion.hub.objects import Hub
from smartregion.storage.base import Readable
from smartregion.web import i18n
from smartregion.web.hubviews import HUB_LABELS
from smartregion.web.sessions import COOKIE as SESSION_COOKIE
from smartregion.web.sessions import Session, SessionCodec

__all__ = ["Portal", "Reader", "hub_text"]

log = logging.getLogger("smartregion.web")

HERE = Path(__file__).parent

#: HTTP status of each domain error on a page (the portal's one mapping)
_STATUS: dict[type[errors.SmartRegionError], int] = {
    errors.BadRequestData: 400,
    errors.InvalidRequest: 400,
    errors.Unauthenticated: 401,
    errors.ResourceNotFound: 404,
    errors.AlreadyExists: 409,
    errors.Conflict: 409,
}


def N_(text: str) -> str:
    """Marks a message for the catalogues; translated where it is shown (`label` filter)."""
    return text


#: the words shown for stored values (themes, policies, roles, …), translated when shown
LABELS: dict[str, dict[str, str]] = {
    "theme": {
        "mobility": N_("Mobility"),
        "environment": N_("Environment"),
        "living": N_("Living"),
        "people": N_("People"),
        "government": N_("Government"),
        "economy": N_("Economy"),
    },
    "policy": {"open": N_("open"), "restricted": N_("restricted"), "private": N_("private")},
    "role": {"reader": N_("reader"), "editor": N_("editor"), "admin": N_("admin")},
    "status": {"pending": N_("pending"), "approved": N_("approved"), "refused": N_("refused")},
    "period": {"24h": N_("last 24 hours"), "7d": N_("last 7 days"), "30d": N_("last 30 days")},
    "aggregation": {"avg": N_("average"), "min": N_("lowest"), "max": N_("highest")},
    "notice": {
        "approved": N_("The request was approved: the organisation may now read the data set."),
        "refused": N_("The request was refused."),
        "key-revoked": N_("The key was revoked."),
        "policy": N_("The access policy was changed."),
        "dataset": N_(
            "The data set was created. Its entities are those of its types that your organisation writes."
        ),
        "member": N_("The member's role was changed."),
        "member-removed": N_("The member was removed from the organisation."),
    },
}
# the hub's pages' words (use cases, initiatives, actors: web/hubviews.py)
LABELS.update(HUB_LABELS)


@dataclass(slots=True)
class Reader:
    """Who reads a page: language, and when signed in the session and acting principal."""

    lang: str
    remember_lang: bool
    session: Session | None = None
    principal: Principal | None = None
    person_name: str = ""
    #: (organisation id, name) of every organisation the person belongs to
    organisations: list[tuple[str, str]] = field(default_factory=list)


class Portal:
    """The portal's shared parts; `app()` builds its ASGI app from the page modules' routes."""

    def __init__(
        self,
        broker: Broker,
        governance: Governance,
        *,
        sessions: SessionCodec,
        csrf_token: Callable[[Request], str],
        map_tiles_url: str = "",
        hub: Hub | None = None,
        matchmaking: Matchmaking | None = None,
    ) -> None:
        self.broker = broker
        self.governance = governance
        #: the ecosystem hub and its matching (None: a store without hub records; the hub's
        #: pages answer 404)
        self.hub = hub
        self.matchmaking = matchmaking
        self.sessions = sessions
        self.csrf_token = csrf_token
        self.map_tiles_url = map_tiles_url
        translations = i18n.load_translations()
        self.translations = translations
        self.envs: dict[str, Environment] = {}
        for lang in i18n.LANGUAGES:
            env = Environment(
                loader=FileSystemLoader(HERE / "templates"),
                autoescape=select_autoescape(("html",)),
                extensions=["jinja2.ext.i18n"],
                trim_blocks=True,
                lstrip_blocks=True,
            )
            env.install_gettext_translations(translations[lang], newstyle=True)  # type: ignore[attr-defined]
            formats = i18n.Formats(lang)
            env.filters["datetime"] = formats.datetime
            env.filters["date"] = formats.date
            env.filters["number"] = formats.number
            env.filters["facet_label"] = _labeller(translations[lang])
            env.filters["hubtext"] = hub_text
            env.globals["version"] = __version__
            self.envs[lang] = env

    # --- the reader ------------------------------------------------------------------------

    async def reader(self, request: Request) -> Reader:
        """The language, session and principal of a request (cached on the request)."""
        cached = request.scope.get("smartregion.reader")
        if isinstance(cached, Reader):
            return cached
        lang, remember = i18n.choose(
            request.query_params.get("lang"),
            request.cookies.get(i18n.COOKIE),
            request.headers.get("accept-language"),
        )
        reader = Reader(lang, remember)
        session = self.sessions.decode(request.cookies.get(SESSION_COOKIE))
        if session is not None:
            store = self.governance.store
            person = await store.get_person(session.person_id)
            memberships = (
                await store.list_memberships(person_id=session.person_id) if person else []
            )
            role = next((m.role for m in memberships if m.org_id == session.org_id), None)
            if person is not None and role is not None:
                reader.session = session
                reader.principal = Principal(org_id=session.org_id, role=role, person_id=person.id)
                reader.person_name = person.name
                for m in memberships:
                    org = await store.get_organisation(m.org_id)
                    reader.organisations.append((m.org_id, org.name if org else m.org_id))
        request.scope["smartregion.reader"] = reader
        return reader

    def gettext(self, lang: str, message: str, **values: Any) -> str:
        """A message in `lang`, with `%(name)s` values filled in (for text outside templates)."""
        text = str(self.translations[lang].gettext(message))
        return text % values if values else text

    def require_hub(self) -> Hub:
        """The hub, or a 404 for its pages where the store keeps no hub records."""
        if self.hub is None:
            raise HTTPException(404, "this platform runs without the hub")
        return self.hub

    async def readable(self, reader: Reader) -> Readable | None:
        """What the reader may read of the entities now (None: everything)."""
        return await self.governance.readable_for(reader.principal)

    # --- rendering -------------------------------------------------------------------------

    async def render(
        self, request: Request, template: str, context: dict[str, Any], *, status: int = 200
    ) -> HTMLResponse:
        """A page in the reader's language."""
        reader = await self.reader(request)
        env = self.envs[reader.lang]
        page = env.get_template(template)
        html = page.render(
            request=request,
            reader=reader,
            lang=reader.lang,
            csrf_token=self.csrf_token(request),
            lang_url=lambda lang: _with_query(request, lang=lang),
            query_url=lambda **changes: _with_query(request, **changes),
            map_tiles_url=self.map_tiles_url,
            **context,
        )
        response = HTMLResponse(html, status_code=status)
        response.headers["Content-Language"] = reader.lang
        response.headers["Vary"] = "Accept-Language, Cookie"
        if reader.remember_lang:
            secure = "; Secure" if request.url.scheme == "https" else ""
            response.headers.append(
                "Set-Cookie",
                f"{i18n.COOKIE}={reader.lang}; Path=/; Max-Age=31536000; SameSite=Lax{secure}",
            )
        return response

    async def error_page(self, request: Request, exc: Exception) -> Response:
        """The one mapping of errors to HTML pages (domain errors and routing errors)."""
        if isinstance(exc, HTTPException):
            status, detail = exc.status_code, str(exc.detail)
        elif isinstance(exc, errors.SmartRegionError):
            status = 403 if isinstance(exc, Forbidden) else 400
            status = next((s for t, s in _STATUS.items() if isinstance(exc, t)), status)
            detail = str(exc)
        else:  # pragma: no cover - logged and shown as a plain 500 page
            log.exception("portal page failed", exc_info=exc)
            status, detail = 500, ""
        if status == 401 and request.method == "GET":
            return Response(
                status_code=303,
                headers={"Location": "/sign-in?" + urlencode({"next": request.url.path})},
            )
        return await self.render(
            request, "error.html", {"status": status, "detail": detail}, status=status
        )

    def app(self, routes: Sequence[BaseRoute]) -> Starlette:
        """The portal's ASGI app: the given page routes, static files, the error mapping."""

        async def on_error(request: Request, exc: Exception) -> Response:
            return await self.error_page(request, exc)

        handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
            errors.SmartRegionError: on_error,
            HTTPException: on_error,
        }
        return Starlette(
            routes=[
                *routes,
                Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
            ],
            exception_handlers=handlers,
        )


def _labeller(translations: Any) -> Callable[[str, str], str]:
    def label(value: str, kind: str) -> str:
        text = LABELS.get(kind, {}).get(value)
        return str(translations.gettext(text)) if text is not None else value

    return label


def hub_text(texts: Any, lang: str) -> str:
    """A hub text {nl, en} in the reader's language, else the other one."""
    if not isinstance(texts, dict):
        return ""
    return str(texts.get(lang) or next((t for t in texts.values() if t), ""))


def _with_query(request: Request, **changes: str | None) -> str:
    """This page's path with some query parameters changed (None: removed)."""
    params = dict(request.query_params)
    for name, value in changes.items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = value
    query = urlencode(params)
    return request.url.path + ("?" + query if query else "")
