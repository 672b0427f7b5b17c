"""`crawlers.optout`: every opt-out and address rule, as pure functions, and the only place that decides them."""

from __future__ import annotations

import ipaddress
import re
import subprocess
from pathlib import Path

from scrapy.http import Headers

from crawlers.optout import (
    address_allowed,
    document_opt_out,
    image_opt_out,
    local_name,
    page_opt_out,
    parse_tdmrep,
    tdmrep_reserved,
)
from data_schemas import reasons as R

REPO = Path(__file__).resolve().parents[2]


def test_page_opt_outs_from_headers_and_meta():
    plain = Headers({"Content-Type": "text/html"})
    assert page_opt_out(plain, agent="mmpipe") == (None, frozenset())
    assert page_opt_out(Headers({"X-Robots-Tag": "mmpipe: noai"}), agent="mmpipe")[0] == R.OPT_OUT_PAGE
    assert page_opt_out(Headers({"X-Robots-Tag": "otherbot: noai"}), agent="mmpipe")[0] is None, \
        "a directive scoped to another agent does not apply"
    assert page_opt_out(Headers({"X-Robots-Tag": "unavailable_after: 2020-01-01"}), agent="mmpipe")[1] == \
        frozenset({"unavailable_after: 2020-01-01"}), "a valued directive is not an agent scope"
    reason, directives = page_opt_out(plain, agent="mmpipe", meta_robots=frozenset({"noimageai", "noindex"}))
    assert reason == R.OPT_OUT_PAGE and directives == {"noimageai", "noindex"}
    assert page_opt_out(plain, agent="mmpipe", meta_tdm_reserved=True)[0] == R.OPT_OUT_TDMREP
    assert page_opt_out(Headers({"tdm-reservation": " 1 "}), agent="mmpipe")[0] == R.OPT_OUT_TDMREP
    both = Headers({"tdm-reservation": "1", "X-Robots-Tag": "noai"})
    assert page_opt_out(both, agent="mmpipe")[0] == R.OPT_OUT_PAGE, "noai is judged before TDMRep"


def test_image_and_document_opt_outs():
    assert image_opt_out(Headers({"X-Robots-Tag": "noimageai"}), agent="mmpipe")[0] == R.OPT_OUT_IMAGE
    assert image_opt_out(Headers({"tdm-reservation": "1"}), agent="mmpipe")[0] == R.OPT_OUT_TDMREP
    assert image_opt_out(Headers({"X-Robots-Tag": "noindex"}), agent="mmpipe") == (None, frozenset({"noindex"}))
    assert document_opt_out(Headers({"tdm-reservation": "1"})) == R.OPT_OUT_TDMREP
    assert document_opt_out(Headers({"tdm-reservation": "0"})) is None


def test_tdmrep_first_matching_rule_decides():
    rules = parse_tdmrep(b'[{"location": "/news/open/*", "tdm-reservation": 0}, '
                         b'{"location": "/news/*", "tdm-reservation": 1}, {"location": "/a$", "tdm-reservation": 1}]')
    assert not tdmrep_reserved(rules, "/news/open/x") and tdmrep_reserved(rules, "/news/x")
    assert tdmrep_reserved(rules, "/a") and not tdmrep_reserved(rules, "/ab") and not tdmrep_reserved(rules, "")


def test_address_rules():
    assert address_allowed("93.184.216.34") and not address_allowed("127.0.0.1")
    loop = [ipaddress.ip_network("127.0.0.1/32")]
    assert address_allowed("127.0.0.1", loop) and address_allowed("::ffff:127.0.0.1", loop)
    assert not address_allowed("127.0.0.2", loop) and not address_allowed("10.0.0.1", loop)
    assert local_name("LOCALHOST") and local_name("a.localhost") and not local_name("localhost.example")


def test_opt_out_rules_are_decided_only_in_optout():
    """One home: no other crawl module judges the opt-out headers or directives (the page object only reads the
    meta tags, `crawlers/extract/meta.py`; the demo site only serves them)."""
    files = subprocess.run(["git", "ls-files", ":(glob)crawlers/*.py", ":(glob)crawlers/spiders/*.py",
                            ":(glob)crawlers/extract/*.py"], cwd=REPO, capture_output=True, text=True,
                           check=True).stdout.split()
    pattern = re.compile(r"b[\"'](tdm-reservation|X-Robots-Tag)[\"']|OPT_OUT_DIRECTIVES|is_global|ipv4_mapped"
                         r"|localhost|strip\(\) == [\"']1[\"']", re.IGNORECASE)
    found = [f"{f}:{i}" for f in files if f != "crawlers/optout.py"
             for i, line in enumerate((REPO / f).read_text().splitlines(), 1) if pattern.search(line)]
    assert found == [], f"opt-out or address rules outside crawlers/optout.py: {found}"
