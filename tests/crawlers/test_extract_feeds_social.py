"""Feed, sitemap, Mastodon and Bluesky page objects on real recordings (../shared/fixtures) and API shapes."""

from __future__ import annotations

import gzip
import json

import pytest
import yaml

from crawlers.demo import generate_site
from crawlers.extract.feeds import parse_feed, parse_sitemap
from crawlers.extract.social import parse_bluesky, parse_mastodon
from crawlers.extract.text import find_credit, split_credit
from data_schemas import reasons


def _feed(fixtures, name: str):
    return parse_feed("https://feeds.example.org/feed.xml", (fixtures / "feeds" / f"{name}.xml").read_bytes())


@pytest.mark.fixtures
def test_media_rss_description_and_credit(fixtures):
    entries = _feed(fixtures, "HuffPostCanada")
    first = entries[0]
    assert first.link.startswith("http://www.huffingtonpost.ca/2017/10/17/winnipeg-high-school")
    assert first.title == "Winnipeg High School Orders Custom Hijabs For Muslim Athletes"
    assert first.published_at.isoformat() == "2017-10-17T22:17:00+00:00"
    ref = first.images[0]
    assert ref.url.endswith("/205775479/Untitled+design+%2857%29.png")
    assert ref.candidates[0] == ("About 50 female students at Dakota Collegiate in Winnipeg wear hijabs. Now, they "
                                 "can get custom hijabs for their athletic uniforms.", "feed")
    assert ref.credit == "Dakota Collegiate/Twitter"
    assert not any(r.url.endswith(".mp4") for e in entries for r in e.images)  # medium="video" is not an image


@pytest.mark.fixtures
def test_atom_media_group_thumbnail(fixtures):
    entries = _feed(fixtures, "youtube_atom")
    assert len(entries) == 15
    assert entries[0].link == "http://www.youtube.com/watch?v=5shykyfmb28"
    ref = entries[0].images[0]
    assert ref.url == "https://i2.ytimg.com/vi/5shykyfmb28/hqdefault.jpg"
    assert ref.candidates[0][1] == "feed" and ref.candidates[0][0].startswith("A question is the most powerful")


@pytest.mark.fixtures
def test_feed_skips_avatars_and_follows_origlink(fixtures):
    entries = _feed(fixtures, "TechCrunch")
    assert entries[0].link == ("http://techcrunch.com/2011/11/02/angies-list-prices-ipo-at-11-to-13-per-share-"
                               "valued-at-over-600m/")
    urls = [r.url for e in entries for r in e.images]
    assert urls and not [u for u in urls if "gravatar.com" in u]
    assert "http://tctechcrunch2011.files.wordpress.com/2011/11/angies-list.jpeg?w=150" in urls


@pytest.mark.fixtures
@pytest.mark.parametrize("name", ["AmazonWebServicesBlog", "CRE", "DuplicateContentAtomFeed", "TypePadNews",
                                  "pet_atom", "itunes", "PaulDixExplainsNothingWFW", "TenderLovemaking"])
def test_every_fixture_feed_parses(fixtures, name):
    entries = _feed(fixtures, name)
    assert entries and all(e.link.startswith("http") for e in entries)


@pytest.mark.parametrize("body", [b"", b"<rss><channel><item><title>x", b"\x1f\x8bnot gzip really"[:2] + b"xx",
                                  b"<html>not a feed</html>"])
def test_broken_feeds_never_raise(body):
    assert parse_feed("https://x.org/f.xml", body) == []
    assert parse_sitemap("https://x.org/s.xml", body).entries == []


def test_sitemap_index_news_and_image_extensions():
    index = (b'<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
             b"<sitemap><loc>https://n.example/sitemaps/a.xml</loc></sitemap>"
             b"<sitemap><loc>/sitemaps/b.xml.gz</loc></sitemap></sitemapindex>")
    assert parse_sitemap("https://n.example/sitemap.xml", index).sitemaps == [
        "https://n.example/sitemaps/a.xml", "https://n.example/sitemaps/b.xml.gz"]
    urlset = (b'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
              b'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9" '
              b'xmlns:image="http://www.google.com/schemas/sitemap-image/1.1"><url><loc>https://n.example/a.html</loc>'
              b"<news:news><news:publication_date>2024-05-20T10:00:00Z</news:publication_date>"
              b"<news:title>Storm hits the coast</news:title></news:news><image:image>"
              b"<image:loc>https://n.example/img/1.jpg</image:loc><image:caption>Waves break over the pier. "
              b"Photo: Ana Souza/Reuters</image:caption></image:image></url></urlset>")
    page = parse_sitemap("https://n.example/sitemaps/a.xml", gzip.compress(urlset))
    (entry,) = page.entries
    assert entry.link == "https://n.example/a.html" and entry.title == "Storm hits the coast"
    assert entry.published_at.isoformat() == "2024-05-20T10:00:00+00:00"
    assert entry.images[0].url == "https://n.example/img/1.jpg"
    assert entry.images[0].candidates == [("Waves break over the pier. Photo: Ana Souza/Reuters", "feed")]
    assert entry.images[0].credit is None  # split off only when the caption is used (news._merge_feed)


def _cassette_posts(fixtures, rel: str):
    data = yaml.safe_load((fixtures / "social" / "mastodon" / rel).read_text())
    posts = []
    for it in data["interactions"]:
        body = it["response"]["body"].get("string") or ""
        posts += parse_mastodon(it["request"]["uri"], body).posts
    return posts


@pytest.mark.fixtures
def test_mastodon_status_alt_text_sensitive_and_noindex(fixtures):
    posts = _cassette_posts(fixtures, "cassettes_entity_tests/test_entity_mediaattachment.yaml")
    post = next(p for p in posts if p.images)
    assert post.url == "https://mastodon.social/@halcy/110447003454258227"
    assert post.images[0].url.endswith("/original/97232afa341c291e.jpg")
    assert post.images[0].candidates == [("furry cube", "social_alt"), ("image post", "context")]
    assert post.sensitive and post.drop_reason == reasons.SOCIAL_NOINDEX
    assert post.lang == "de" and post.published_at.year == 2023
    audio = next(p for p in posts if not p.images)  # the audio attachment is not an image
    assert audio.url.endswith("/110447012380248325")


@pytest.mark.fixtures
def test_mastodon_multiple_images_and_kept_status(fixtures):
    posts = _cassette_posts(fixtures, "cassettes/test_media_post_multiple.yaml")
    post = next(p for p in posts if len(p.images) == 2)
    assert [c[0] for r in post.images for c in r.candidates if c[1] == "social_alt"] == [
        "John Lennon doing a funny walk", "hololives #1 detective, watson ameliachan"]
    assert post.sensitive
    plain = next(p for p in _cassette_posts(fixtures, "cassettes_pre_4_0_0/test_media_post.yaml") if p.images)
    assert not plain.sensitive and plain.drop_reason is None
    assert plain.images[0].candidates[0] == ("John Lennon doing a funny walk", "social_alt")


@pytest.mark.fixtures
def test_mastodon_videos_are_not_images(fixtures):
    for rel in ("cassettes_entity_tests/test_entity_mediaattachmentvideometadata.yaml",
                "cassettes_entity_tests/test_entity_status.yaml"):
        assert all(not p.images for p in _cassette_posts(fixtures, rel))


def test_mastodon_paging_link_header_and_max_id():
    statuses = [{"id": "20", "url": "https://m.example/@a/20", "account": {}, "media_attachments": []},
                {"id": "19", "url": "https://m.example/@a/19", "account": {}, "media_attachments": []}]
    body = json.dumps(statuses)
    url = "https://m.example/api/v1/timelines/tag/cats?limit=2"
    link = '<https://m.example/api/v1/timelines/tag/cats?limit=2&max_id=19>; rel="next", <https://x>; rel="prev"'
    assert parse_mastodon(url, body, link_header=link).next_url.endswith("max_id=19")
    assert parse_mastodon(url, body).next_url == url + "&max_id=19"
    assert parse_mastodon(url, body, link_header='<https://x>; rel="prev"').next_url is None  # last page
    assert parse_mastodon(url, b"{not json").posts == []


def test_bluesky_appview_shapes_labels_and_cursor():
    site = generate_site(articles=12, seed=3)
    author = site.plan.authors[0]
    status, _headers, body = site.response(f"/xrpc/app.bsky.feed.getAuthorFeed?actor={author.handle}&limit=2",
                                           base_url="http://d.example")
    assert status == 200
    page = parse_bluesky("http://d.example/xrpc/app.bsky.feed.getAuthorFeed?actor=x&limit=2", body,
                         web_base="http://d.example/bsky")
    data = json.loads(body)
    assert len(page.posts) == len(data["feed"])
    if data.get("cursor"):
        assert page.next_url.endswith(f"cursor={data['cursor']}")
    view = {"uri": "at://did:plc:abc/app.bsky.feed.post/3kxyz", "author": {
        "did": "did:plc:abc", "handle": "alice.example", "labels": [{"val": "!no-unauthenticated"}]},
        "record": {"text": "Harbour at dawn", "createdAt": "2024-05-01T06:00:00Z", "langs": ["en"]},
        "labels": [{"val": "nudity"}],
        "embed": {"$type": "app.bsky.embed.recordWithMedia#view", "media": {
            "$type": "app.bsky.embed.images#view", "images": [
                {"thumb": "https://cdn.example/t.jpg", "fullsize": "https://cdn.example/f.jpg",
                 "alt": "Fishing boats moored in a harbour at dawn"}]}}}
    (post,) = parse_bluesky("https://api.example/xrpc/app.bsky.feed.searchPosts?q=x",
                            json.dumps({"posts": [view]})).posts
    assert post.url == "https://bsky.app/profile/alice.example/post/3kxyz"
    assert post.images[0].url == "https://cdn.example/f.jpg"
    assert post.images[0].candidates == [("Fishing boats moored in a harbour at dawn", "social_alt"),
                                         ("Harbour at dawn", "context")]
    assert post.drop_reason == reasons.SOCIAL_NO_UNAUTHENTICATED and post.sensitive


@pytest.mark.parametrize(("text", "credit"), [
    ("Protesters in Paris on Monday. Photo: Jane Doe/Reuters", "Jane Doe/Reuters"),
    ("A man walks his dog (AP Photo/John Smith)", "AP Photo/John Smith"),
    ("The skyline at dusk. Credit: Kenji Sato/Getty Images", "Kenji Sato/Getty Images"),
    ("The skyline at dusk. Getty Images", "Getty Images"),
    ("A cat on a mat © Jane Doe", "Jane Doe"),
    ("Workers at the plant. (Reuters)", "Reuters"),
    ("Sur cette photo : deux hexagones noirs", None),
    ("A photo by the river at noon", None),
    ("A view of the AP headquarters in New York", None),
])
def test_credit_separation(text, credit):
    assert find_credit(text) == credit
    caption, _ = split_credit(text)
    assert caption and credit not in caption if credit else caption == text


def test_sitemap_keep_reads_only_the_kept_articles_in_full():
    """A crawl split over processes reads the captions of its own articles only; the others stay known as links."""
    urls = "".join(f"<url><loc>https://n.example/a{i}.html</loc><lastmod>2024-05-2{i}</lastmod><image:image>"
                   f"<image:loc>https://n.example/img/{i}.jpg</image:loc><image:caption>Caption {i}</image:caption>"
                   f"</image:image></url>" for i in range(4))
    body = (b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
            b'xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">' + urls.encode() + b"</urlset>")
    full = parse_sitemap("https://n.example/s.xml", body).entries
    odd = ("a1.html", "a3.html")
    part = parse_sitemap("https://n.example/s.xml", body, keep=lambda url: url.endswith(odd)).entries
    assert [e.link for e in part] == [e.link for e in full]
    assert [repr(e) for e in part[1::2]] == [repr(e) for e in full[1::2]]
    assert all(not e.images and e.published_at is None for e in part[0::2])
    assert full[0].images[0].candidates == [("Caption 0", "feed")]
    no_ns = body.replace(b' xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"', b"")
    part = parse_sitemap("https://n.example/s.xml", no_ns, keep=lambda url: url.endswith("a1.html")).entries
    assert [bool(e.images) for e in part] == [False, True, False, False]


# --- issue #14: post shapes the first reader missed, and posts of unexpected shape ---------------------------

def _bsky_view(rkey: str, text: str, embed: dict | None = None, handle: str = "alice.example") -> dict:
    view = {"uri": f"at://did:plc:abc/app.bsky.feed.post/{rkey}", "author": {"did": "did:plc:abc", "handle": handle},
            "record": {"text": text, "createdAt": "2024-05-01T06:00:00Z", "langs": ["en"]}}
    if embed is not None:
        view["embed"] = embed
    return view


def _bsky_images(name: str, alt: str) -> dict:
    return {"$type": "app.bsky.embed.images#view", "images": [
        {"thumb": f"https://cdn.example/t/{name}.jpg", "fullsize": f"https://cdn.example/f/{name}.jpg", "alt": alt}]}


def test_bluesky_reply_parents_and_quoted_posts_with_media_are_read():
    quoted = {"uri": "at://did:plc:q/app.bsky.feed.post/3q", "author": {"did": "did:plc:q", "handle": "bob.example"},
              "value": {"text": "The original post", "createdAt": "2024-04-30T06:00:00Z"},
              "embeds": [_bsky_images("quoted", "A lighthouse in fog")]}
    feed = {"feed": [
        {"post": _bsky_view("3a", "Look at this", {"$type": "app.bsky.embed.recordWithMedia#view",
                                                   "media": _bsky_images("own", "Fishing boats at dawn"),
                                                   "record": {"record": quoted}}),
         "reply": {"parent": _bsky_view("3p", "The parent", _bsky_images("parent", "A red tram"), "carol.example"),
                   "root": _bsky_view("3p", "The parent", _bsky_images("parent", "A red tram"), "carol.example")}},
        {"post": _bsky_view("3b", "Quoting", {"$type": "app.bsky.embed.record#view", "record": quoted})}]}
    page = parse_bluesky("https://api.example/xrpc/app.bsky.feed.getAuthorFeed?actor=a", json.dumps(feed))
    by_url = {p.url: p for p in page.posts}
    assert by_url["https://bsky.app/profile/alice.example/post/3a"].images[0].url == "https://cdn.example/f/own.jpg"
    parent = by_url["https://bsky.app/profile/carol.example/post/3p"]
    assert parent.images[0].candidates == [("A red tram", "social_alt"), ("The parent", "context")]
    quote = by_url["https://bsky.app/profile/bob.example/post/3q"]  # its own post, its own text: not the quoter's
    assert quote.images[0].candidates == [("A lighthouse in fog", "social_alt"), ("The original post", "context")]
    assert len(page.posts) == 4 and all(r.role == "body" for p in page.posts for r in p.images)


def test_a_field_of_an_unexpected_type_drops_that_post_only():
    good = _bsky_view("3g", "Harbour at dawn", _bsky_images("g", "Boats"))
    bad_text = _bsky_view("3x", "x", _bsky_images("x", "Boats"))
    bad_text["record"]["text"] = 12345  # a number where a string is expected
    bad_images = _bsky_view("3y", "y", {"$type": "app.bsky.embed.images#view", "images": {"alt": "a dict"}})
    page = parse_bluesky("https://api.example/xrpc/app.bsky.feed.searchPosts?q=x",
                         json.dumps({"posts": [bad_text, good, bad_images], "cursor": "c2"}))
    assert [p.url for p in page.posts] == ["https://bsky.app/profile/alice.example/post/3g"]
    assert page.drops == {reasons.SOCIAL_BAD_POST: 2} and page.next_url.endswith("cursor=c2")
    statuses = [{"id": "1", "url": "https://m.example/@a/1", "content": ["a list"], "media_attachments": []},
                {"id": "2", "url": "https://m.example/@a/2", "content": "<p>Fine</p>", "media_attachments": [
                    {"type": "image", "url": "https://m.example/i/2.jpg", "description": "A cat"}]},
                {"id": "3", "url": "https://m.example/@a/3", "media_attachments": [{"type": "image", "url": 7}]}]
    page = parse_mastodon("https://m.example/api/v1/timelines/tag/cats", json.dumps(statuses))
    assert [p.url for p in page.posts] == ["https://m.example/@a/2"]
    assert page.drops == {reasons.SOCIAL_BAD_POST: 2}


@pytest.mark.parametrize("parse", [parse_mastodon, parse_bluesky])
def test_json_nested_too_deep_is_a_recorded_drop_not_an_exception(parse):
    body = "[" * 100_000 + "]" * 100_000
    page = parse("https://api.example/x", body)
    assert page.posts == [] and page.drops == {reasons.SOCIAL_BAD_RESPONSE: 1}


@pytest.mark.fixtures
def test_mastodon_video_previews_with_a_description_are_opt_in(fixtures):
    rel = "cassettes_entity_tests/test_entity_status.yaml"
    assert all(not p.images for p in _cassette_posts(fixtures, rel))  # default: off (see crawlers/README.md)
    data = yaml.safe_load((fixtures / "social" / "mastodon" / rel).read_text())
    posts = [p for it in data["interactions"]
             for p in parse_mastodon(it["request"]["uri"], it["response"]["body"].get("string") or "",
                                     video_previews=True).posts]
    (ref,) = [r for p in posts for r in p.images]
    assert ref.url.endswith("/small/e6bdbd614788c2d1.png")  # the gifv's preview still, never the .mp4
    assert ref.candidates[0] == ("a furry cube breakdancing", "social_alt")
