"""Page objects for social APIs: Mastodon timelines/statuses and Bluesky AppView feeds/search.

They return every post with its image attachments and flags (sensitive, noindex, !no-unauthenticated); the
spider decides what to keep, so the same function serves a crawl that includes sensitive media and one that
does not.
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import lxml.html
from lxml import etree

from crawlers.extract.images import absolute_url
from crawlers.extract.meta import parse_date
from crawlers.extract.records import ImageRef, SocialPage, SocialPost
from crawlers.extract.text import clean_text
from data_schemas import reasons

_LINK_NEXT = re.compile(r"<([^>]+)>\s*;\s*rel=\"?next\"?")
BSKY_SENSITIVE_LABELS = {"porn", "sexual", "nudity", "graphic-media", "gore", "nsfl"}
BSKY_IMAGES = "app.bsky.embed.images#view"
BSKY_RECORD_WITH_MEDIA = "app.bsky.embed.recordWithMedia#view"
BSKY_RECORD = "app.bsky.embed.record#view"
MAX_QUOTE_DEPTH = 3  # a quote of a quote of a quote: deeper embeds are not read


class BadPost(ValueError):
    """A post with a field of an unexpected type: that post is dropped (`reasons.SOCIAL_BAD_POST`), not the page."""


def _json(body: bytes | str) -> tuple[object, str | None]:
    """(data, None), or (None, drop reason) for a body that is not JSON at all or nests too deep to read."""
    try:
        return json.loads(body), None
    except RecursionError:  # a hostile or broken API page; the parser's stack is not ours to lose
        return None, reasons.SOCIAL_BAD_RESPONSE
    except (ValueError, TypeError):
        return None, None


def _get(obj: dict, key: str, *types: type, default=None):
    """`obj[key]` when absent/null (default) or of one of `types`; anything else makes the post a BadPost."""
    value = obj.get(key)
    if value is None:
        return default
    if not isinstance(value, types) or (bool not in types and isinstance(value, bool) and int in types):
        raise BadPost(f"{key}: {type(value).__name__}")
    return value


def with_query(url: str, **params: str | None) -> str:
    """`url` with query parameters set (None removes one); other parameters keep their order."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query += [(k, v) for k, v in params.items() if v is not None]
    return urlunsplit(parts._replace(query=urlencode(query)))


def html_text(html: str | None) -> str:
    if not html:
        return ""
    try:
        frag = lxml.html.fragment_fromstring(html.replace("<br>", "\n").replace("<br />", "\n"),
                                             create_parent="div")
    except (etree.ParserError, ValueError):
        return clean_text(re.sub(r"<[^>]+>", " ", html))
    for p in frag.iter("p"):  # paragraphs become separate sentences, not glued words
        p.tail = " " + (p.tail or "")
    return clean_text(frag.text_content())


# --- Mastodon ------------------------------------------------------------------------------------------------

def parse_mastodon(url: str, body: bytes | str, *, link_header: str | None = None,
                   video_previews: bool = False) -> SocialPage:
    """A timeline page (JSON list of statuses) or a single status; the next page from `Link` or `max_id`.

    `video_previews`: a `gifv`/`video` attachment with a description gives its preview still as an image (off by
    default: see crawlers/README.md for what the recordings showed)."""
    data, error = _json(body)
    page = SocialPage()
    if error:
        page.drops[error] = 1
    statuses = data if isinstance(data, list) else [data] if isinstance(data, dict) else []
    for status in statuses:
        try:
            post = mastodon_status(status, url, video_previews=video_previews)
        except BadPost:
            page.drops[reasons.SOCIAL_BAD_POST] = page.drops.get(reasons.SOCIAL_BAD_POST, 0) + 1
            continue
        if post is not None:
            page.posts.append(post)
    if link_header:
        m = _LINK_NEXT.search(link_header)
        if m:
            page.next_url = absolute_url(m.group(1), url)
    if link_header is None and isinstance(data, list) and page.posts and page.posts[-1].cursor_id:
        page.next_url = with_query(url, max_id=page.posts[-1].cursor_id)
    return page


def mastodon_status(status, base: str, *, video_previews: bool = False) -> SocialPost | None:
    """One status (a boost: the boosted one); raises BadPost for a field of an unexpected type."""
    if not isinstance(status, dict):
        return None
    cursor = str(_get(status, "id", str, int) or "") or None
    reblog = _get(status, "reblog", dict)
    if reblog is not None:  # a boost: the boosted status is the content
        status = reblog
    url = _get(status, "url", str) or _get(status, "uri", str)
    if not url:
        return None
    account = _get(status, "account", dict, default={})
    post = SocialPost(url=url, text=html_text(_get(status, "content", str))
                      or clean_text(_get(status, "spoiler_text", str)) or None,
                      lang=_get(status, "language", str), published_at=parse_date(_get(status, "created_at", str)),
                      sensitive=bool(_get(status, "sensitive", bool)), cursor_id=cursor)
    if _get(account, "noindex", bool) is True:
        post.drop_reason = reasons.SOCIAL_NOINDEX
    for media in _get(status, "media_attachments", list, default=[]):
        if not isinstance(media, dict):
            raise BadPost(f"media_attachments item: {type(media).__name__}")
        kind = _get(media, "type", str)
        description = _get(media, "description", str)
        if kind == "image":
            src = _get(media, "url", str) or _get(media, "remote_url", str)
        elif kind in ("gifv", "video") and video_previews and clean_text(description):
            src = _get(media, "preview_url", str)  # the still a video shows before it plays
        else:
            continue
        _add_image(post, absolute_url(src, base), description)
    return post


# --- Bluesky -------------------------------------------------------------------------------------------------

def parse_bluesky(url: str, body: bytes | str, *, web_base: str = "https://bsky.app") -> SocialPage:
    """getAuthorFeed / getFeed (`feed[].post`, and the `reply.parent` / `reply.root` posts it answers) or
    searchPosts (`posts[]`); quoted posts (`app.bsky.embed.record`, `recordWithMedia`) come as posts of their
    own.  The next page from `cursor`.  A post with a field of an unexpected type is dropped and counted."""
    data, error = _json(body)
    page = SocialPage()
    if error:
        page.drops[error] = 1
    if not isinstance(data, dict):
        return page
    views = []
    feed, found = data.get("feed"), data.get("posts")
    for item in feed if isinstance(feed, list) else []:
        if isinstance(item, dict):
            views.append(item.get("post"))
            reply = item.get("reply") if isinstance(item.get("reply"), dict) else {}
            views += [reply.get(key) for key in ("parent", "root") if isinstance(reply.get(key), dict)]
    views += list(found) if isinstance(found, list) else []
    seen: set[str] = set()
    for view in views:
        try:
            posts = bluesky_posts(view, web_base=web_base)
        except BadPost:
            page.drops[reasons.SOCIAL_BAD_POST] = page.drops.get(reasons.SOCIAL_BAD_POST, 0) + 1
            continue
        for post in posts:
            if post.url not in seen:
                seen.add(post.url)
                page.posts.append(post)
    cursor = data.get("cursor")
    if isinstance(cursor, str) and cursor and views:
        page.next_url = with_query(url, cursor=cursor)
    return page


def post_web_url(uri: str, handle: str | None, web_base: str) -> str | None:
    """at://did/app.bsky.feed.post/rkey -> https://bsky.app/profile/<handle or did>/post/<rkey>."""
    m = re.match(r"^at://([^/]+)/app\.bsky\.feed\.post/([^/?#]+)$", uri or "")
    if not m:
        return None
    return f"{web_base.rstrip('/')}/profile/{handle or m.group(1)}/post/{m.group(2)}"


def bluesky_post(view, *, web_base: str) -> SocialPost | None:
    """The post of a postView (without the posts it quotes); raises BadPost for a field of an unexpected type."""
    posts = bluesky_posts(view, web_base=web_base)
    return posts[0] if posts else None


def bluesky_posts(view, *, web_base: str, depth: int = 0) -> list[SocialPost]:
    """A postView (or a quoted viewRecord) and the posts it quotes, each with its own images."""
    if not isinstance(view, dict) or depth > MAX_QUOTE_DEPTH:
        return []
    author = _get(view, "author", dict, default={})
    url = post_web_url(_get(view, "uri", str) or "", _get(author, "handle", str), web_base)
    if url is None:
        return []
    record = _get(view, "record", dict) or _get(view, "value", dict, default={})  # postView / quoted viewRecord
    langs = _get(record, "langs", list, default=[])
    post = SocialPost(url=url, text=clean_text(_get(record, "text", str)) or None,
                      lang=langs[0] if langs and isinstance(langs[0], str) else None,
                      published_at=parse_date(_get(record, "createdAt", str) or _get(view, "indexedAt", str)),
                      sensitive=bool(_labels(view) & BSKY_SENSITIVE_LABELS))
    if "!no-unauthenticated" in _labels(author):
        post.drop_reason = reasons.SOCIAL_NO_UNAUTHENTICATED
    quoted: list[SocialPost] = []
    embeds = [_get(view, "embed", dict)] + list(_get(view, "embeds", list, default=[]))
    for embed in embeds:
        if embed is None:
            continue
        if not isinstance(embed, dict):
            raise BadPost(f"embed: {type(embed).__name__}")
        kind = _get(embed, "$type", str)
        if kind == BSKY_RECORD_WITH_MEDIA:
            _add_embed_images(post, _get(embed, "media", dict, default={}), url)
            inner = _get(embed, "record", dict, default={})
            quoted += bluesky_posts(_get(inner, "record", dict), web_base=web_base, depth=depth + 1)
        elif kind == BSKY_RECORD:
            quoted += bluesky_posts(_get(embed, "record", dict), web_base=web_base, depth=depth + 1)
        else:
            _add_embed_images(post, embed, url)
    return [post, *quoted]


def _labels(obj: dict) -> set[str]:
    return {lab.get("val") for lab in _get(obj, "labels", list, default=[]) if isinstance(lab, dict)}


def _add_embed_images(post: SocialPost, embed: dict, base: str) -> None:
    if _get(embed, "$type", str) != BSKY_IMAGES:
        return
    for image in _get(embed, "images", list, default=[]):
        if not isinstance(image, dict):
            raise BadPost(f"images item: {type(image).__name__}")
        src = _get(image, "fullsize", str) or _get(image, "thumb", str)
        _add_image(post, absolute_url(src, base), _get(image, "alt", str))


def _add_image(post, src: str | None, alt: str | None) -> None:
    """One attached image: its alt text is the post's own caption, the post text its context."""
    if not src:
        return
    ref = ImageRef(src, role="body")
    ref.add(clean_text(alt), "social_alt")
    ref.add(post.text, "context")
    post.images.append(ref)
