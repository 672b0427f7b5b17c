"""Requests whose URL is checked for safety by a pattern before w3lib's full re-serialisation.

Scrapy passes every request URL through `w3lib.url.safe_url_string`, which splits, IDNA-encodes and
percent-quotes it: ~2.4% of a crawl's CPU, though the URLs our extractors produce are nearly always already in
the form it returns.  `SafeUrlRequest` keeps a URL that `_ALREADY_SAFE` matches as it is (a lower-case http(s)
host, a port without leading zeros, only characters `safe_url_string` leaves alone, no fragment, no empty query)
and hands any other URL to Scrapy, so the stored URL is `safe_url_string`'s in every case (a test checks the
pattern against it on many generated URLs).  Redirects replace the URL through the same check.
"""

from __future__ import annotations

import re

from scrapy.http import Request

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_PORT = r"(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
_PATH = r"[A-Za-z0-9\-._~:/@!$&'()*+,;=%]"  # w3lib's path-safest characters, less the ? that ends a path
_QUERY = r"[A-Za-z0-9\-._~:/?@!$&()*+,;=%]"  # its query-safest characters for http(s) (no ')
_ALREADY_SAFE = re.compile(rf"https?://{_LABEL}(?:\.{_LABEL})*(?::{_PORT})?(?:/{_PATH}*(?:\?{_QUERY}+)?)?")


class SafeUrlRequest(Request):
    def _set_url(self, url: str) -> None:
        if type(url) is str and _ALREADY_SAFE.fullmatch(url):
            self._url = url
        else:
            super()._set_url(url)
