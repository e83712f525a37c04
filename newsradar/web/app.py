"""The dashboard's ASGI app (Starlette): Stories, Story and Sources pages, /metrics, /healthz, /readyz, login.

Server-rendered from our jinja2 templates with autoescape on every template, no JavaScript at all and
nothing from a CDN: the Content-Security-Policy forbids every script (default-src 'none') and allows
only our own stylesheet, so even markup that slipped through could not run. Pages read the state store
through a read-only connection; endpoints are plain functions, which Starlette runs in a thread pool.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from newsradar.errors import StateError
from newsradar.web.auth import COOKIE, Gate
from newsradar.web.pages import Filters, Pages
from newsradar.web.probes import Readiness

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; "
       "frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
MAX_LOGIN_BODY = 4096


def _environment() -> Environment:
    return Environment(loader=FileSystemLoader(str(HERE / "templates")), autoescape=True, undefined=StrictUndefined,
                       trim_blocks=True, lstrip_blocks=True)


def create_app(pages: Pages, gate: Gate, readiness: Readiness, registry: CollectorRegistry) -> Starlette:
    """The app; everything it needs is passed in once (built by newsradar.web.server.Dashboard)."""
    env = _environment()

    def now() -> datetime:
        return datetime.now(timezone.utc)

    def page(name: str, status: int = 200, *, private: bool = True, **context: Any) -> HTMLResponse:
        """Render a page; ``private`` pages show the broken-source count in the header (login does not)."""
        broken: int | None = None
        if private:
            try:
                broken = pages.broken_sources()
            except StateError:
                broken = -1
        html = env.get_template(name).render(broken=broken, login_needed=gate.required, **context)
        return HTMLResponse(html, status_code=status)

    def readable(render: Callable[[Request], HTMLResponse]) -> Callable[[Request], HTMLResponse]:
        def endpoint(request: Request) -> HTMLResponse:
            try:
                return render(request)
            except StateError as exc:
                log.error("dashboard: %s", exc)
                return page("error.html.j2", 503, title="상태 저장소를 읽을 수 없습니다",
                            message="잠시 후 다시 시도해 주세요. 데몬 로그에 원인이 있습니다.")
        return endpoint

    def stories(request: Request) -> HTMLResponse:
        filters = Filters.parse(dict(request.query_params), pages.terms)
        return page("stories.html.j2", **pages.stories(filters, now()))

    def story(request: Request) -> HTMLResponse:
        found = pages.story(str(request.path_params["story_id"])[:200], now())
        if found is None:
            return page("error.html.j2", 404, title="기사를 찾을 수 없습니다",
                        message="오래되어 정리되었거나 주소가 잘못되었습니다.")
        return page("story.html.j2", story=found)

    def sources(request: Request) -> HTMLResponse:
        return page("sources.html.j2", **pages.sources(now()))

    def metrics(request: Request) -> Response:
        """The Prometheus text format, or OpenMetrics when the scraper asks for it (Accept)."""
        encode, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encode(registry), headers={"Content-Type": content_type})

    def healthz(request: Request) -> Response:
        return _json({"status": "ok"}, 200)

    def readyz(request: Request) -> Response:
        ready, body = readiness()
        return _json(body, 200 if ready else 503)

    async def login(request: Request) -> Response:
        if not gate.required:
            return RedirectResponse("/", status_code=303)
        if request.method == "GET":
            return page("login.html.j2", 401, private=False, failed=False)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_LOGIN_BODY:
                return Response("login form too large", status_code=413)
        presented = parse_qs(body.decode("utf-8", errors="replace")).get("token", [""])[0]
        if not gate.token_matches(presented.strip()):
            log.warning("dashboard: a login with a wrong token from %s", request.client.host if request.client else "?")
            return page("login.html.j2", 401, private=False, failed=True)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(COOKIE, gate.session, httponly=True, samesite="strict", path="/",
                            secure=request.url.scheme == "https")
        return response

    def stylesheet(request: Request) -> Response:
        return FileResponse(HERE / "static" / "dashboard.css", media_type="text/css")

    class Guard(BaseHTTPMiddleware):
        """Token check (when bound off loopback) and the security headers on every answer."""

        async def dispatch(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
            if gate.allows(request.url.path, request.headers.get("authorization"), request.cookies.get(COOKIE)):
                response = await call_next(request)
            elif "text/html" in request.headers.get("accept", ""):
                response = page("login.html.j2", 401, private=False, failed=False)
            else:
                response = Response("401 unauthorized: send Authorization: Bearer <token>\n", status_code=401,
                                    media_type="text/plain", headers={"WWW-Authenticate": 'Bearer realm="newsradar"'})
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

    routes = [
        Route("/", readable(stories)),
        Route("/story/{story_id}", readable(story)),
        Route("/sources", readable(sources)),
        Route("/metrics", metrics),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/static/dashboard.css", stylesheet),
        Route("/favicon.ico", lambda request: Response(status_code=204)),  # no icon; spares the browser a 404
    ]
    return Starlette(routes=routes, middleware=[Middleware(Guard)])


def _json(body: dict[str, Any], status: int) -> Response:
    return Response(json.dumps(body, ensure_ascii=False) + "\n", status_code=status,
                    media_type="application/json")
