"""Every opt-out and address rule of the crawl, decided here as pure functions, and nowhere else.

- `X-Robots-Tag` (scoped to `*` or our agent token, or unscoped) and `<meta name="robots">` / a meta named after
  our agent token (parsed by the page object, `crawlers.extract.meta`): `noai` / `noimageai` opt a page or an
  image out; the other directives are recorded on the row (`opt_out`).
- TDMRep (W3C CG): the `tdm-reservation: 1` header or meta, and `/.well-known/tdmrep.json` rules per origin.
- Addresses: only public ones, plus the networks a config names (`private_networks`); `localhost` names are
  refused without a lookup.

The page path (`spiders/news.py`), the image path (`fetch.classify_image`) and the middlewares
(`crawlers.middlewares`: TDMRep file and discovery documents, address checks) call these functions.  Why opt-outs
are not in `crawlers/policy.py`: that module decides which settings a config may change; this one judges
responses and addresses while crawling.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable

from data_schemas import reasons as R

OPT_OUT_DIRECTIVES = frozenset({"noai", "noimageai"})
_UA_SCOPED = re.compile(r"^\s*([A-Za-z0-9_.*-]+)\s*:\s*(.*)$")
_VALUED = {"unavailable_after", "max-snippet", "max-image-preview", "max-video-preview"}
_LOCAL_NAMES = ("localhost", "localhost.localdomain")


def robots_directives(values: list[bytes] | None, *, agent: str = "mmpipe") -> frozenset[str]:
    """Directives of `X-Robots-Tag` header values that apply to us (unscoped, `*`, or our agent token)."""
    out: set[str] = set()
    for raw in values or []:
        text = raw.decode("latin-1") if isinstance(raw, bytes) else raw
        m = _UA_SCOPED.match(text)
        if m and m.group(1).lower() not in _VALUED:
            if m.group(1).lower() not in (agent.lower(), "*"):
                continue
            text = m.group(2)
        out.update(d.strip().lower() for d in text.split(",") if d.strip())
    return frozenset(out)


def header_directives(headers, *, agent: str) -> frozenset[str]:
    """The `X-Robots-Tag` directives of a response's headers (Scrapy `Headers`) that apply to us."""
    return robots_directives(headers.getlist(b"X-Robots-Tag"), agent=agent)


def tdm_reserved_header(headers) -> bool:
    """The TDMRep `tdm-reservation: 1` response header."""
    return headers.get(b"tdm-reservation", b"").strip() == b"1"


def page_opt_out(headers, *, agent: str, meta_robots: frozenset[str] = frozenset(),
                 meta_tdm_reserved: bool = False) -> tuple[str | None, frozenset[str]]:
    """(drop reason or None, the directives that apply) of an HTML page: its headers and its meta tags."""
    directives = header_directives(headers, agent=agent) | meta_robots
    return opt_out_reason(directives, tdm_reserved=meta_tdm_reserved or tdm_reserved_header(headers)), directives


def image_opt_out(headers, *, agent: str) -> tuple[str | None, frozenset[str]]:
    """(drop reason or None, the directives that apply) of an image response."""
    directives = header_directives(headers, agent=agent)
    return opt_out_reason(directives, tdm_reserved=tdm_reserved_header(headers), reason=R.OPT_OUT_IMAGE), directives


def opt_out_reason(directives: frozenset[str], *, tdm_reserved: bool, reason: str = R.OPT_OUT_PAGE) -> str | None:
    """The rule for a page or an image: `noai`/`noimageai` among the directives that apply gives `reason`, a TDMRep
    reservation gives `opt_out_tdmrep`; the same rule for a live response and an archived one (WAT/WARC)."""
    if directives & OPT_OUT_DIRECTIVES:
        return reason
    return R.OPT_OUT_TDMREP if tdm_reserved else None


def tdm_reserved_values(values) -> bool:
    """TDMRep's `tdm-reservation` from plain header or meta values (an archive's record): any value "1" reserves."""
    return any(isinstance(v, str) and v.strip() == "1" for v in values)


def document_opt_out(headers) -> str | None:
    """Drop reason of a discovery document (feed, sitemap, listing, API page): the TDMRep header."""
    return R.OPT_OUT_TDMREP if tdm_reserved_header(headers) else None


def parse_tdmrep(body: bytes) -> list[tuple[re.Pattern, bool]]:
    """[(path pattern, reserved)] in file order; `location` uses robots.txt-style `*` and `$`."""
    try:
        data = json.loads(body)
    except ValueError:
        return []
    rules = []
    for rule in data if isinstance(data, list) else []:
        if not isinstance(rule, dict) or not isinstance(rule.get("location"), str):
            continue
        loc = rule["location"].strip()
        loc = re.sub(r"^https?://[^/]+", "", loc) or "/"
        regex = re.escape(loc).replace(r"\*", ".*")
        regex = regex[:-2] + "$" if regex.endswith(r"\$") else regex
        rules.append((re.compile(regex), str(rule.get("tdm-reservation", "0")).strip() in ("1", "true", "True")))
    return rules


def tdmrep_reserved(rules: list[tuple[re.Pattern, bool]], path: str) -> bool:
    """Whether the first tdmrep.json rule that matches `path` reserves TDM rights."""
    for pattern, reserved in rules:
        if pattern.match(path or "/"):
            return reserved
    return False


def is_public_ip(ip: str) -> bool:
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    return addr.is_global and not addr.is_multicast


def address_allowed(ip: str, networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network] = ()) -> bool:
    """A public address, or one in `networks` (the config's `private_networks`); ValueError if not an address."""
    if is_public_ip(ip):
        return True
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    return any(addr in net for net in networks)


def local_name(host: str) -> bool:
    """`localhost` and its subdomains (RFC 6761): loopback whatever a resolver says."""
    host = host.lower()
    return host in _LOCAL_NAMES or host.endswith(".localhost")
