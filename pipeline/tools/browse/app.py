"""`create_app(dataset)`: the dataset browser, a Starlette app; `browse()` serves it with uvicorn.

Pages are rendered on the server by Jinja2 with autoescaping on, so captions, URLs and every other value from the
web are text, never markup; a link is made only of an http(s) URL, and a Content-Security-Policy (scripts and
styles from this server only, no remote loads, no framing) is a second line of defence.  The one write, takedown,
is a POST that must come from this origin (Origin / Sec-Fetch-Site) with the Host we serve, a session cookie
(SameSite=Strict) and the token derived from it; it calls the same function as `mmpipe takedown`.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import secrets
from collections import OrderedDict
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from pipeline.config import CleanConfig
from pipeline.tools._read import ToolError, thumbnail
from pipeline.tools.browse.plots import PLOTS
from pipeline.tools.browse.query import DatasetQueries, Filters
from pipeline.tools.browse.search import ImageSearch
from pipeline.tools.takedown import TakedownRequest, takedown

HERE = Path(__file__).parent
CSP = ("default-src 'none'; img-src 'self'; style-src 'self'; script-src 'self'; form-action 'self'; "
       "base-uri 'none'; frame-ancestors 'none'")
SESSION_COOKIE = "mmpipe_browse_session"
PAGE_SIZE = 48
THUMB_SIZES = (256, 768)


def safe_href(url: object) -> str | None:
    """An http(s) URL to link to, or None: a ``javascript:`` or ``data:`` URL from the web must never be a link."""
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme in ("http", "https") and parts.hostname else None


def host_of(url: object) -> str:
    try:
        return urlsplit(str(url)).hostname or ""
    except ValueError:
        return ""


class _Thumbs:
    """Re-encoded JPEG previews (a picture from the web is never served as it came), the most recent kept."""

    def __init__(self, *, max_pixels: int, capacity: int = 4096):
        self.max_pixels, self.capacity = max_pixels, capacity
        self._cache: OrderedDict[tuple, bytes | None] = OrderedDict()

    def get(self, cache_key: tuple, data_fn, size: int) -> bytes | None:
        if cache_key in self._cache:
            self._cache.move_to_end(cache_key)
            return self._cache[cache_key]
        img = thumbnail(data_fn(), size, max_pixels=self.max_pixels)
        out = None
        if img is not None:
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=82)
            out = buf.getvalue()
        self._cache[cache_key] = out
        if len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        return out


class Browser:
    """The app's state: the queries, the optional image search, the session secret and the templates."""

    def __init__(self, dataset: str | Path, *, search: ImageSearch | None = None):
        self.queries = DatasetQueries(dataset)
        self.search = search
        self.secret = secrets.token_bytes(32)
        params = self.queries.ds.manifest.parameters
        self.thumbs = _Thumbs(max_pixels=int(params.get("max_pixels") or CleanConfig.max_pixels))
        self.env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True))
        self.env.filters.update(href=safe_href, host=host_of)
        self.env.globals.update(urlencode=urlencode, has_search=search is not None)

    def token(self, session: str) -> str:
        return hmac.new(self.secret, session.encode(), hashlib.sha256).hexdigest()

    def render(self, request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        session = request.cookies.get(SESSION_COOKIE) or secrets.token_urlsafe(24)
        html = self.env.get_template(template).render(
            token=self.token(session), dataset=str(self.queries.path), path=request.url.path, **context)
        response = HTMLResponse(html, status_code=status)
        if request.cookies.get(SESSION_COOKIE) != session:
            response.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="strict")
        return response


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def _filters(request: Request) -> Filters:
    p = request.query_params
    return Filters(split=p.get("split", ""), source=p.get("source", ""), lang=p.get("lang", ""),
                   min_side=_int(p.get("min_side")), max_side=_int(p.get("max_side")),
                   min_caption=_int(p.get("min_caption")), max_caption=_int(p.get("max_caption")),
                   q=p.get("q", "").strip(), order="random" if p.get("order") == "random" else "key")


def grid(request: Request) -> HTMLResponse:
    b: Browser = request.app.state.browser
    filters = _filters(request)
    page = max(_int(request.query_params.get("page")) or 1, 1)
    total, rows = b.queries.page(filters, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    return b.render(request, "grid.html", rows=rows, total=total, page=page, pages=pages, filters=filters,
                    params=filters.params(), facets=b.queries.facets())


def item(request: Request) -> HTMLResponse:
    b: Browser = request.app.state.browser
    key = request.path_params["key"]
    row = b.queries.rows_by_key([key]).get(key)
    if row is None:
        return b.render(request, "message.html", 404, title="Not in the dataset",
                        message=f"No row with key {key} (taken down, or never kept).")
    similar = _with_rows(b, b.search.similar(key)) if b.search else []
    return b.render(request, "item.html", row=row, similar=similar, model=b.search.model if b.search else "")


def _with_rows(b: Browser, hits: list[tuple[str, float]]) -> list[dict]:
    rows = b.queries.rows_by_key([k for k, _ in hits])
    return [dict(rows[k], score=s) for k, s in hits if k in rows]  # a key taken down since is left out


def image_search(request: Request) -> HTMLResponse:
    b: Browser = request.app.state.browser
    phrase = request.query_params.get("q", "").strip()
    k = min(max(_int(request.query_params.get("k")) or 24, 1), 200)
    if b.search is None:
        return b.render(request, "message.html", 404, title="No model",
                        message="Text-to-image search needs a trained run: start the browser with --run RUN.")
    hits = _with_rows(b, b.search.text(phrase, k)) if phrase else []
    return b.render(request, "search.html", phrase=phrase, k=k, rows=hits, model=b.search.model)


def sql(request: Request) -> HTMLResponse:
    b: Browser = request.app.state.browser
    text = request.query_params.get("q", "")
    result = b.queries.run_sql(text) if text.strip() else None
    return b.render(request, "sql.html", sql=text or "SELECT source, lang, count(*) AS n FROM rows GROUP BY ALL "
                                                     "ORDER BY n DESC", result=result)


def reasons(request: Request) -> HTMLResponse:
    b: Browser = request.app.state.browser
    return b.render(request, "reasons.html", reasons=b.queries.reasons(), funnel=b.queries.funnel())


def duplicates(request: Request) -> HTMLResponse:
    b: Browser = request.app.state.browser
    return b.render(request, "duplicates.html", clusters=b.queries.duplicate_clusters())


def plots(request: Request) -> HTMLResponse:
    b: Browser = request.app.state.browser
    return b.render(request, "plots.html", plots=[(name, title) for name, (title, _) in PLOTS.items()],
                    version=b.queries.version)


def plot(request: Request) -> Response:
    b: Browser = request.app.state.browser
    name = request.path_params["name"]
    if name not in PLOTS:
        return Response("no such plot", status_code=404, media_type="text/plain")
    return Response(PLOTS[name][1](b.queries), media_type="image/png", headers={"Cache-Control": "no-store"})


def thumb(request: Request) -> Response:
    b: Browser = request.app.state.browser
    key, kind = request.path_params["key"], request.path_params["kind"]
    size = THUMB_SIZES[1] if request.query_params.get("size") == "large" else THUMB_SIZES[0]
    fetch = (lambda: b.queries.image(key)) if kind == "row" else (lambda: b.queries.rejected_image(key))
    data = b.thumbs.get((b.queries.version, kind, key, size), fetch, size)
    if data is None:
        return Response("no preview", status_code=404, media_type="text/plain")
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=300"})


def _cross_origin(request: Request) -> str | None:
    """Why this request is not from a page of this server, or None when it is."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site != "same-origin":
        return f"Sec-Fetch-Site: {site}"
    origin = request.headers.get("origin")
    if origin is None:
        return None if site == "same-origin" else "no Origin header"
    if origin != f"{request.url.scheme}://{request.headers.get('host', '')}":
        return f"Origin {origin}"
    return None


async def _form(request: Request, *, max_bytes: int = 65536) -> dict[str, str]:
    """The POSTed form fields (urlencoded: the takedown form holds a few short fields, no files)."""
    body = await request.body()
    if len(body) > max_bytes or not request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"):
        return {}
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}


async def takedown_post(request: Request) -> HTMLResponse:
    b: Browser = request.app.state.browser
    why = _cross_origin(request)
    form = await _form(request)
    session = request.cookies.get(SESSION_COOKIE, "")
    if why is None and not (session and hmac.compare_digest(str(form.get("token", "")), b.token(session))):
        why = "missing or wrong session token"
    if why is not None:
        return b.render(request, "message.html", 403, title="Refused",
                        message=f"Takedown refused: {why}. Use the form on the browser's own page.")
    kind, value = str(form.get("kind", "")), str(form.get("value", "")).strip()
    try:
        request_ = TakedownRequest(urls=[value] if kind == "url" else [], domains=[value] if kind == "domain" else [],
                                   sha256=[value] if kind == "sha256" else [], reason=str(form.get("reason", "")))
        if request_.is_empty():
            raise ValueError(f"choose what to take down (kind '{kind}' is not url, domain or sha256)")
        result = takedown(b.queries.path, request_)
    except (ToolError, ValueError) as exc:
        return b.render(request, "message.html", 400, title="Takedown failed", message=str(exc))
    b.queries.reload()
    return b.render(request, "takedown.html", result=result, kind=kind, value=value)


async def _security_headers(request: Request, call_next):
    response = await call_next(request)
    response.headers.update({"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                             "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin",
                             "Cross-Origin-Resource-Policy": "same-origin"})
    return response


def create_app(dataset: str | Path, *, search: ImageSearch | None = None,
               allowed_hosts: list[str] | None = None) -> Starlette:
    """The browser over a CLEAN dataset; ``search`` (built by the caller from a model) enables the model's views.

    ``allowed_hosts``: the Host names the app answers to (DNS rebinding: a page on another name that resolves to
    127.0.0.1 is refused); default 127.0.0.1 and localhost."""
    from starlette.middleware.base import BaseHTTPMiddleware

    browser = Browser(dataset, search=search)
    routes = [
        Route("/", grid), Route("/item/{key}", item), Route("/search", image_search), Route("/sql", sql),
        Route("/reasons", reasons), Route("/duplicates", duplicates), Route("/plots", plots),
        Route("/plot/{name}.png", plot), Route("/thumb/{kind:str}/{key}.jpg", thumb),
        Route("/takedown", takedown_post, methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes, middleware=[
        Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts or ["127.0.0.1", "localhost"]),
        Middleware(BaseHTTPMiddleware, dispatch=_security_headers)])
    app.state.browser = browser
    return app


DEFAULT_HOST = "127.0.0.1"  # this machine only: the browser can take rows down
DEFAULT_PORT = 8765


def browse(dataset: str | Path, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
           search: ImageSearch | None = None, log_level: str = "warning") -> None:
    """Serve the browser until interrupted (the CLI's `mmpipe browse`)."""
    import uvicorn

    # bound to every interface, any name may reach it (the Origin check still pins writes to the page's own host)
    hosts = ["*"] if host in ("0.0.0.0", "::") else sorted({host, "127.0.0.1", "localhost"})
    app = create_app(dataset, search=search, allowed_hosts=hosts)
    try:
        uvicorn.run(app, host=host, port=port, log_level=log_level)
    finally:
        app.state.browser.queries.close()
