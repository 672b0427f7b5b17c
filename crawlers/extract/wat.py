"""Page objects for web archives: a Common Crawl WAT record's JSON, or a WARC response's HTML, -> `ArchivePage`.

WAT (what cc2dataset reads): the page's `HTML-Metadata` lists its links; an image is a link whose `path` is
`IMG@/src` and that has `alt` text (cc2dataset's rule: an image without alt text has nothing to pair with).  The
alt text is the candidate (`alt`), the page title the context (`title`).  WARC (`html: true`): the page's HTML goes
through the news page objects (`extract_article`), so an archived page yields the same records a live crawl of
it would.  Both honour the page's own opt-outs as the live crawl does: `X-Robots-Tag` / `<meta name=robots>`
`noai`/`noimageai`, and TDMRep's `tdm-reservation` header or meta.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urljoin

from crawlers.extract.article import extract_article
from crawlers.extract.records import ImageRef
from crawlers.optout import opt_out_reason, robots_directives, tdm_reserved_values


@dataclass(slots=True)
class ArchivePage:
    url: str
    title: str | None = None
    lang: str | None = None
    images: list[ImageRef] = field(default_factory=list)
    robots: frozenset[str] = frozenset()  # X-Robots-Tag and <meta name=robots> directives that apply to us
    tdm_reservation: bool = False
    published_at: object = None
    license: str | None = None

    @property
    def drop(self) -> str | None:
        """The reason every pair of this page is left out, or None."""
        return opt_out_reason(self.robots, tdm_reserved=self.tdm_reservation)


def header_values(headers: dict | list, name: str) -> list[str]:
    """Every value of header `name` (any case) from a WAT `Headers` object (a value may be a list) or from
    (name, value) pairs."""
    items = headers.items() if isinstance(headers, dict) else headers
    out: list[str] = []
    for key, value in items:
        if isinstance(key, str) and key.lower() == name.lower():
            out.extend(v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str))
    return out


def wat_page(envelope: dict, *, agent: str = "mmpipe") -> ArchivePage | None:
    """The images of one WAT metadata record; None for a record that is not a successful HTML response.
    Raises ValueError for JSON of the wrong shape (the caller records it as a bad record)."""
    env = _obj(envelope.get("Envelope"), "Envelope")
    header = _obj(env.get("WARC-Header-Metadata"), "WARC-Header-Metadata")
    if header.get("WARC-Type") != "response":
        return None
    url = header.get("WARC-Target-URI")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValueError(f"WARC-Target-URI {url!r} is not an http(s) URL")
    http = _obj(_obj(env.get("Payload-Metadata", {}), "Payload-Metadata").get("HTTP-Response-Metadata", {}),
                "HTTP-Response-Metadata")
    status = str(_obj(http.get("Response-Message", {}), "Response-Message").get("Status", "200"))
    html = http.get("HTML-Metadata")
    if not status.startswith("2") or html is None:
        return None
    html, headers = _obj(html, "HTML-Metadata"), _obj(http.get("Headers", {}), "Headers")
    head = _obj(html.get("Head", {}), "Head")
    metas = [m for m in _list(head.get("Metas", []), "Metas") if isinstance(m, dict)]
    robots = [m.get("content") for m in metas if str(m.get("name", "")).lower() in ("robots", agent.lower())]
    tdm = [m.get("content") for m in metas if str(m.get("name", "")).lower() == "tdm-reservation"]
    title = head.get("Title") if isinstance(head.get("Title"), str) else None
    page = ArchivePage(url=url, title=title.strip() if title else None,
                       robots=robots_directives(header_values(headers, "X-Robots-Tag") +
                                                [r for r in robots if isinstance(r, str)], agent=agent),
                       tdm_reservation=tdm_reserved_values(header_values(headers, "tdm-reservation") + tdm))
    base = head.get("Base") if isinstance(head.get("Base"), str) else url
    seen: dict[str, ImageRef] = {}
    for link in _list(html.get("Links", []), "Links"):
        if not (isinstance(link, dict) and link.get("path") == "IMG@/src" and isinstance(link.get("url"), str)
                and isinstance(link.get("alt"), str) and link["alt"].strip()):
            continue
        src = urljoin(base, link["url"].strip())
        if not src.startswith(("http://", "https://")):
            continue
        ref = seen.get(src) or seen.setdefault(src, ImageRef(src, role="body"))
        ref.add(link["alt"].strip(), "alt")
        ref.add(page.title, "title")
    page.images = list(seen.values())
    return page


def html_page(url: str, headers: list[tuple[str, str]], body: bytes, *, agent: str = "mmpipe",
              page_text: bool = True) -> ArchivePage:
    """A WARC response's page through the news page objects (the images a live crawl of the page would record)."""
    article = extract_article(url, body, agent=agent, page_text=page_text, links=False)
    robots = robots_directives(header_values(headers, "X-Robots-Tag"), agent=agent) | article.robots
    tdm = article.tdm_reservation or tdm_reserved_values(header_values(headers, "tdm-reservation"))
    if page_text:
        for ref in article.images:
            ref.add(article.title, "title")
    return ArchivePage(url=article.url or url, title=article.title, lang=article.lang, images=article.images,
                       robots=robots, tdm_reservation=tdm, published_at=article.published_at, license=article.license)


def _obj(value, name: str) -> dict:
    if not isinstance(value, dict):
        raise ValueError(f"'{name}' is a {type(value).__name__}, expected an object")
    return value


def _list(value, name: str) -> list:
    if not isinstance(value, list):
        raise ValueError(f"'{name}' is a {type(value).__name__}, expected a list")
    return value
