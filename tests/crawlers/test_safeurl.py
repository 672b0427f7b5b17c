"""`SafeUrlRequest` keeps URLs as given only where w3lib's `safe_url_string` would return them unchanged."""

from __future__ import annotations

import random

from scrapy import Request
from w3lib.url import safe_url_string

from crawlers.internals import ALREADY_SAFE as _ALREADY_SAFE
from crawlers.internals import SafeUrlRequest

_SAFE = "abcXYZ019-._~:/@!$&'()*+,;=%"
_NOISE = "?#[]| \t\u00e9\u212a\"<>`{}^\\'"
_HOSTS = ["a.com", "127.0.0.1", "xn--bcher-kva.example", "a-b.c", "a" * 63 + ".com", "a" * 64 + ".com", "A.com",
          "-a.com", "a..b", "x", "b\u00fccher.de", "[::1]"]
_PORTS = ["", ":80", ":080", ":0", ":35000", ":65535", ":65536", ":"]


def _urls(rng: random.Random, n: int):
    for _ in range(n):
        url = rng.choice(["http://", "https://", "HTTP://", "ftp://"]) + rng.choice(_HOSTS) + rng.choice(_PORTS)
        path = "/" + "".join(rng.choice(_SAFE) for _ in range(rng.randint(0, 20)))
        if rng.random() < 0.5:
            cut = rng.randint(0, len(path))
            path = path[:cut] + rng.choice(_NOISE) + path[cut:]
        yield url + (path if rng.random() < 0.95 else "")


def test_pattern_matches_only_urls_safe_url_string_leaves_alone():
    matched = 0
    for url in _urls(random.Random(4), 60000):
        if _ALREADY_SAFE.fullmatch(url):
            matched += 1
            assert safe_url_string(url) == url, url
    assert matched > 3000, "the generator must exercise the pattern"


def test_request_urls_equal_scrapys_for_any_input():
    rng = random.Random(9)
    urls = list(_urls(rng, 3000)) + ["http://Ex\u00e4mple.com/a b", "https://a.com/x?", "https://a.com?q=1",
                                      "http://127.0.0.1:35000/img/2024/05/000000-residents.jpg", " http://a.com/x "]
    for url in urls:
        try:
            expected = Request(url).url
        except ValueError:
            continue
        assert SafeUrlRequest(url).url == expected, url
    redirected = SafeUrlRequest("http://a.com/x").replace(url="http://a.com/\u00e9 t")
    assert type(redirected) is SafeUrlRequest and redirected.url == "http://a.com/%C3%A9%20t"
