"""The news page object on real saved pages (../shared/fixtures/news): images, caption candidates, credits."""

from __future__ import annotations

import gzip
import json
import random

import pytest

from crawlers.extract.article import extract_article
from crawlers.extract.images import absolute_url

pytestmark = pytest.mark.fixtures

# page -> images that must be found, each with (origin -> text) candidates and the credit; and URL fragments that
# must NOT be extracted (chrome: dividers, ads, avatars, lazy placeholders).
CASES = [
    pytest.param(
        "readability/bbc-1", "http://www.bbc.com/news/world-us-canada-33646704",
        {"/news/976/cpsprodpb/462D/production/_84456971_gettyimages-167501087.jpg": (
            {"figcaption": "The president said he would continue fighting for greater gun control laws",
             "alt": "Gun control campaigners protest in McPhearson Square in Washington DC - 25 April 2013"}, None),
         "/news/976/cpsprodpb/142FD/production/_84458628_shirtreuters.jpg": (
            {"figcaption": "Kenya is getting ready to welcome the US president"}, None)},
        ["line976.jpg", "outbrain.com", "/news/555/cpsprodpb/462D/"], id="bbc-lazy-datasrc-divider-outbrain"),
    pytest.param(
        "readability/nytimes-3", "https://www.nytimes.com/2019/02/21/nyregion/nyc-winter-utilities.html",
        {"merlin_150498339_cf9085e5-9756-4169-a5a5-5b516316a3fa-superJumbo.jpg": (
            {"figcaption": "A Con Edison worker repairing underground cables this month in Flushing, Queens. The "
                           "likely source of the problem was water and rock salt that had seeped underground."},
            "Chang W. Lee/The New York Times")},
        ["author-corey-kilgannon"], id="nytimes-credit-markup-headshot"),
    pytest.param(
        "readability/lazy-image-1", "https://medium.com/@voodooengineering/nodejs-cpu-profiling",
        {"https://miro.medium.com/max/3788/1*5o3M5niyi911waUrKWVZ0Q.png": (
            {"figcaption": "Memory leak in action"}, None)},
        ["max/60/", "q=20"], id="medium-noscript-over-placeholder"),
    pytest.param(  # the og:image is the body's figure at another crop: one record with every candidate
        "readability/theverge", "https://www.theverge.com/2023/6/7/vision-pro",
        {"24709755/DSC00889.jpg": (
            {"og_image_alt": "The Apple Vision Pro headset on display at Apple’s headquarters in Cupertino.",
             "figcaption": "The Apple Vision Pro.",
             "alt": "The Apple Vision Pro headset on display at Apple’s headquarters in Cupertino."}, None)},
        ["native-ad-placeholder"], id="verge-og-srcset-sponsor"),
    pytest.param(
        "readability/schema-org-context-object", "https://www.nbcnews.com/news/world/south-korea-impeachment",
        {"241206-yoon-south-korea-mb-0824-656188.jpg": (
            {"figcaption": "An image of South Korean President Yoon Suk Yeol is raised during a candlelight rally in "
                           "Seoul on Thursday."}, "Anthony Wallace / AFP - Getty Images")},
        [], id="nbc-jsonld-credit"),
    pytest.param(
        "readability/guardian-1", "https://www.theguardian.com/world/2019/jan/03/maori-whale-strandings",
        {"05cb692c634cd90e5411aab92ca3e649474ff786/0_0_4800_3200/master/4800.jpg": (
            {"alt": "Hori Parata at his Pātaua farm, the place where he was born and grew up."}, None)},
        ["/1000.jpg"], id="guardian-utf8-largest-srcset"),
    pytest.param(
        "scrapinghub/8b194530308204139d9c8f7d495a26b117c78756ac1802cfc3c0a8bfdf2c0d50",
        "https://www.thesun.co.uk/news/10371941/hunter-diagnosed-bubonic-plague/",
        {"NINTCHDBPICT000540033229.jpg?w=2480": (
            {"figcaption": "Beijing Chaoyang Hospital in Beijing, China, where plague-infected people from Inner "
                           "Mongolia sought treatment"}, "EPA")},
        [], id="sun-credit-span"),
    pytest.param(
        "scrapinghub/e1c7023ee2148901b086256fdd30a0893d10b0720b510d5ff07a021109347266",
        "https://phys.org/news/2019-11-hibernating-astronauts-smaller-spacecraft.html",
        {"csz/news/800/2019/1-hibernatinga.jpg": (
            {"alt": "Hibernating astronauts would need smaller spacecraft"}, "ESA")},
        [], id="physorg-inline-credit"),
    pytest.param(
        "trafilatura-cache/netzpolitik.org.abmahnungen", "https://netzpolitik.org/2016/cider-connection/",
        {"2016/06/lutz-s-beeindruckt.jpg": (
            {"figcaption": "Der Anwalt ist beeindruckt von seinem Mandanten.",
             "alt": "Der Anwalt ist beeindruckt von seinem Mandanten."}, None)},
        [], id="netzpolitik-de"),
    pytest.param(
        "trafilatura-cache/correctiv.org.zusage", "https://correctiv.org/aktuelles/2019/05/14/zusage/",
        {"extrablatt_schulz-1600x1067.jpg": (
            {"figcaption": "Ein Artikel im Extrablatt verunglimpfte den SPD-Politiker Martin Schulz © Ivo Mayr / "
                           "Correctiv"}, "Ivo Mayr / Correctiv")},
        [], id="correctiv-copyright-credit"),
]


def _load(fixtures, rel: str) -> bytes:
    base = fixtures / "news" / rel
    if base.is_dir():
        return gzip.open(base / "source.html.gz").read()
    if rel.startswith("scrapinghub/"):
        return gzip.open(fixtures / "news" / "scrapinghub" / "html" / f"{rel.split('/', 1)[1]}.html.gz").read()
    return gzip.open(base.with_name(base.name + ".html.gz")).read()


@pytest.mark.parametrize(("rel", "url", "expected", "absent"), CASES)
def test_real_page_images_and_captions(fixtures, rel, url, expected, absent):
    page = extract_article(url, _load(fixtures, rel))
    assert page.title
    for fragment, (candidates, credit) in expected.items():
        found = [ref for ref in page.images if fragment in ref.url]
        assert found, f"{rel}: no image matching {fragment!r} in {[r.url for r in page.images]}"
        ref = found[0]
        got = {}
        for text, origin in ref.candidates:
            got.setdefault(origin, text)
        for origin, text in candidates.items():
            assert got.get(origin) == text, f"{rel} {fragment}: {origin}"
        assert ref.credit == credit
    for fragment in absent:
        assert not [r.url for r in page.images if fragment in r.url], f"{rel}: chrome image {fragment} extracted"
    for ref in page.images:
        assert ref.url.startswith(("http://", "https://")) and "#" not in ref.url


def test_page_text_candidates_are_optional(fixtures):
    body = _load(fixtures, "readability/bbc-1")
    with_text = extract_article("http://www.bbc.com/news/x", body)
    without = extract_article("http://www.bbc.com/news/x", body, page_text=False)
    origins = {o for r in with_text.images for _, o in r.candidates}
    assert {"title", "context"} <= origins
    assert not {"title", "context"} & {o for r in without.images for _, o in r.candidates}
    lead = next(r for r in with_text.images if "_84456971_" in r.url)
    assert ("\"For us not to be able to resolve that issue has been something that is distressing,\" he added.",
            "context") in lead.candidates


def test_metadata_dates_language(fixtures):
    page = extract_article("https://www.theguardian.com/x", _load(fixtures, "readability/guardian-1"))
    assert page.lang == "en"
    assert page.published_at is not None and page.published_at.year == 2019


def test_base_href_lazy_srcset_picture_and_optout_meta():
    html = b"""<html><head><base href="https://cdn.example.org/assets/">
    <meta name="robots" content="index, noimageai"><meta property="og:type" content="article"></head><body><article>
    <figure><img class="lazyload" src="data:image/gif;base64,R0lGOD" data-srcset="a-480.jpg 480w, a-1200.jpg 1200w"
      alt="Alt A"><figcaption>Caption A <span class="credit">Photo: Jane Doe/Reuters</span></figcaption></figure>
    <p>Text after A.</p>
    <picture><source type="image/webp" srcset="b-800.webp 800w, b-1600.webp 1600w">
      <img src="b-640.jpg" srcset="b-640.jpg 640w, b-1024.jpg 1024w" alt="Alt B (AP Photo/John Smith)"></picture>
    <img src="/px.gif" width="1" height="1"><img src="logo.png" class="site-logo" alt="Logo">
    <div class="ad-slot"><img src="banner.jpg" alt="Advertisement"></div>
    </article></body></html>"""
    page = extract_article("https://news.example.org/story.html", html)
    urls = [r.url for r in page.images]
    assert urls == ["https://cdn.example.org/assets/a-1200.jpg", "https://cdn.example.org/assets/b-1600.webp"]
    a, b = page.images
    assert ("Caption A", "figcaption") in a.candidates and a.credit == "Jane Doe/Reuters"
    assert ("Text after A.", "context") in a.candidates
    assert ("Alt B (AP Photo/John Smith)", "alt") in b.candidates and b.credit == "AP Photo/John Smith"
    assert "noimageai" in page.robots


@pytest.mark.parametrize("body", [b"", b"   ", b"\x00\xff\xfe garbage", b"<html><body><img src=", b"<?xml?><x/>",
                                  "<html><body>\u00e9<img src='a.jpg' alt='\u00e9t\u00e9'></body></html>",
                                  b"<script type='application/ld+json'>{broken</script>"])
def test_broken_html_never_raises(body):
    page = extract_article("https://example.org/a.html", body)
    assert isinstance(page.images, list)


def test_truncated_real_pages_never_raise(fixtures):
    rng = random.Random(7)
    pages = sorted((fixtures / "news" / "readability").glob("*/source.html.gz"))[:40]
    for path in pages:
        body = gzip.open(path).read()
        for cut in (rng.randrange(len(body)), len(body) // 3):
            extract_article("https://example.org/x.html", body[:cut])


def test_scrapinghub_pages_all_parse(fixtures):
    """Every benchmark page parses; most real news pages yield at least one image."""
    truth = json.loads((fixtures / "news" / "scrapinghub" / "ground-truth.json").read_text())
    with_images = 0
    for key, entry in list(truth.items())[::3]:  # every third page keeps the test short
        body = gzip.open(fixtures / "news" / "scrapinghub" / "html" / f"{key}.html.gz").read()
        page = extract_article(entry["url"], body)
        with_images += bool(page.images)
    assert with_images >= 0.8 * len(list(truth)[::3])


@pytest.mark.parametrize("base", ["http://ex.com/news/x.html", "https://ex.com:8080/n/?q=1#f", "http://u@ex.com/"])
def test_root_relative_fast_path_agrees_with_urljoin(base):
    """`absolute_url` joins root-relative paths without urljoin; the result must be urljoin's, fragment cut."""
    from urllib.parse import urljoin

    for url in ["/a/b.jpg", "/a/b.jpg#x", "/a/b.jpg?x=1&y=/z", "/a b.jpg", "/%20x.jpg", "/a/../b.jpg", "/./x",
                "/a\\b", "//cdn.ex.com/p.jpg", "p.jpg", "../p.jpg", "?page=2"]:
        assert absolute_url(url, base) == urljoin(base, url).split("#", 1)[0], url


def test_credit_prefilter_never_changes_a_split(monkeypatch):
    """split_credit only runs the credit patterns whose literal words occur in the text; every label and agency of
    those patterns, in every credit shape, must split exactly as with all four patterns run."""
    from crawlers.extract import text as T

    names = [*T._AGENCY_WORDS, "Getty Images", "EPA-EFE", "PA Wire", "Sipa USA", "iStockphoto", "Wikimedia Commons",
             "Anadolu Agency"]
    labels = [*T._LABEL_WORDS, "Photograph", "Photos", "Pictures", "Images", "Credits"]
    texts = ["A harbour at dawn.", "Fishing boats (left) in the harbour", "Copyright 2024 Jane Doe", "(c) J. Doe",
             "Boats in the harbour © Jane Doe", "sur cette photo : deux bateaux"]
    for name in names:
        texts += [f"Boats in the harbour. {name}", f"Boats in the harbour. Jane Doe/{name}",
                  f"Boats in the harbour ({name})", f"Boats in the harbour (AP Photo/{name})", f"{name} boats at dawn"]
    for label in labels:
        texts += [f"Boats in the harbour. {label}: Jane Doe/Reuters", f"Boats. {label} by Jane Doe",
                  f"Boats | {label} courtesy of the port", f"{label}: boats in the harbour at dawn on Monday"]
    fast = [T.split_credit(t) for t in texts]
    monkeypatch.setattr(T, "_may_match", lambda text: (T._PAREN, T._LABELLED, T._COPYRIGHT, T._AGENCY_TAIL))
    assert fast == [T.split_credit(t) for t in texts]
    assert sum(credit is not None for _, credit in fast) > len(names) * 3, "the corpus must exercise the patterns"


def test_chrome_word_gates_agree_with_their_patterns():
    """Each chrome/placeholder pattern is asked only when its words occur in an ASCII text; on every text the gated
    answer must be the pattern's own, for ASCII and non-ASCII texts (where case folding is the pattern's)."""
    from crawlers.extract import images as I

    rng = random.Random(11)
    pieces = ["logo", "LoGo", "icon", "/ads/", "/Ad/", "ad", "Pixel.", "data:", "1x1", "blank", "x.GIF", "a.svg",
              ".ICO", "?", "#", "/", "-", "_", "3", "author", "lazy.png", "doubleclick.net", "FACEBOOK.com/tr",
              "feeds.feedburner.com/~ff", "\u212a", "\u017f", "\u0130", "\u00e9", "spacer", "ba\u0131dge"]
    gates = [I._PLACEHOLDER_SRC, I._CHROME_FILE, I._CHROME_HOSTS, I._CHROME_DIR, I._NON_PHOTO_EXT]
    hits = 0
    for _ in range(20000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 6)))
        for gate in gates:
            expected = gate.pattern.search(text)
            assert bool(gate.search(text)) == bool(expected), (gate.pattern.pattern, text)
            hits += bool(expected)
    assert hits > 10000, "the corpus must exercise the patterns"


def test_url_path_fast_path_agrees_with_urlsplit():
    from urllib.parse import urlsplit

    from crawlers.extract.images import url_path as _path

    rng = random.Random(5)
    alphabet = "ab/?#:[]%.-_ Hh\t\u00e9"
    urls = ["http://a.com/x/y.jpg?q=1#f", "https://a.com", "https://a.com?x", "http://a.com#/x", "HTTP://A.com/P",
            "http://[::1]/x.jpg", "http://[::1/x", "https://u@h:80/p;q?x#y", "http:///x", "http://?/x"]
    urls += [rng.choice(["http://", "https://", "HttpS://", "ftp://", "", "http:/"])
             + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) for _ in range(20000)]
    for url in urls:
        try:
            expected = urlsplit(url).path
        except ValueError:
            expected = ""
        assert _path(url) == expected, url


def test_malformed_image_urls_are_skipped_not_raised():
    """A bracketed host urlsplit rejects ("http://[oops/x.jpg") used to escape extraction as a ValueError, failing
    the whole page; now that image is skipped and the page's other images are kept."""
    body = (b"<html><body><article><figure><img src='http://[oops/x.jpg'><figcaption>Bad</figcaption></figure>"
            b"<img src='http://[::1]/ok.jpg' alt='Fine'><img src='https://ex\xc3\xa4mple.com/p.jpg' alt='IDN'>"
            b"</article><meta property='og:image' content='https://[x/og.jpg'></body></html>")
    page = extract_article("https://example.org/a.html", body)
    assert [ref.url for ref in page.images] == ["http://[::1]/ok.jpg", "https://ex\u00e4mple.com/p.jpg"]
