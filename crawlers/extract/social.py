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


def _json(body: bytes | str):
    try:
        return json.loads(body)
    except (ValueError, TypeError):
        return None


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

def parse_mastodon(url: str, body: bytes | str, *, link_header: str | None = None) -> SocialPage:
    """A timeline page (JSON list of statuses) or a single status; the next page from `Link` or `max_id`."""
    data = _json(body)
    page = SocialPage()
    statuses = data if isinstance(data, list) else [data] if isinstance(data, dict) else []
    for status in statuses:
        post = mastodon_status(status, url)
        if post is not None:
            page.posts.append(post)
    if link_header:
        m = _LINK_NEXT.search(link_header)
        if m:
            page.next_url = absolute_url(m.group(1), url)
    if link_header is None and isinstance(data, list) and page.posts and page.posts[-1].cursor_id:
        page.next_url = with_query(url, max_id=page.posts[-1].cursor_id)
    return page


def mastodon_status(status, base: str) -> SocialPost | None:
    if not isinstance(status, dict):
        return None
    cursor = str(status.get("id") or "") or None
    if isinstance(status.get("reblog"), dict):  # a boost: the boosted status is the content
        status = status["reblog"]
    url = status.get("url") or status.get("uri")
    if not isinstance(url, str):
        return None
    account = status.get("account") if isinstance(status.get("account"), dict) else {}
    post = SocialPost(url=url, text=html_text(status.get("content")) or clean_text(status.get("spoiler_text")) or None,
                      lang=status.get("language") if isinstance(status.get("language"), str) else None,
                      published_at=parse_date(status.get("created_at")),
                      sensitive=bool(status.get("sensitive")), cursor_id=cursor)
    if account.get("noindex") is True:
        post.drop_reason = reasons.SOCIAL_NOINDEX
    for media in status.get("media_attachments") or []:
        if not isinstance(media, dict) or media.get("type") != "image":
            continue
        _add_image(post, absolute_url(media.get("url") or media.get("remote_url"), base), media.get("description"))
    return post


# --- Bluesky -------------------------------------------------------------------------------------------------

def parse_bluesky(url: str, body: bytes | str, *, web_base: str = "https://bsky.app") -> SocialPage:
    """getAuthorFeed / getFeed (`feed[].post`) or searchPosts (`posts[]`); the next page from `cursor`."""
    data = _json(body)
    page = SocialPage()
    if not isinstance(data, dict):
        return page
    views = [item.get("post") for item in data.get("feed") or [] if isinstance(item, dict)]
    views += list(data.get("posts") or [])
    for view in views:
        post = bluesky_post(view, web_base=web_base)
        if post is not None:
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
    if not isinstance(view, dict):
        return None
    author = view.get("author") if isinstance(view.get("author"), dict) else {}
    url = post_web_url(view.get("uri", ""), author.get("handle"), web_base)
    if url is None:
        return None
    record = view.get("record") if isinstance(view.get("record"), dict) else {}
    langs = record.get("langs") if isinstance(record.get("langs"), list) else []
    post_labels = {lab.get("val") for lab in view.get("labels") or [] if isinstance(lab, dict)}
    author_labels = {lab.get("val") for lab in author.get("labels") or [] if isinstance(lab, dict)}
    post = SocialPost(url=url, text=clean_text(record.get("text")) or None,
                      lang=langs[0] if langs and isinstance(langs[0], str) else None,
                      published_at=parse_date(record.get("createdAt") or view.get("indexedAt")),
                      sensitive=bool(post_labels & BSKY_SENSITIVE_LABELS))
    if "!no-unauthenticated" in author_labels:
        post.drop_reason = reasons.SOCIAL_NO_UNAUTHENTICATED
    embed = view.get("embed") if isinstance(view.get("embed"), dict) else {}
    if embed.get("$type") == BSKY_RECORD_WITH_MEDIA and isinstance(embed.get("media"), dict):
        embed = embed["media"]
    if embed.get("$type") == BSKY_IMAGES:
        for image in embed.get("images") or []:
            if not isinstance(image, dict):
                continue
            _add_image(post, absolute_url(image.get("fullsize") or image.get("thumb"), url), image.get("alt"))
    return post


def _add_image(post, src: str | None, alt: str | None) -> None:
    """One attached image: its alt text is the post's own caption, the post text its context."""
    if not src:
        return
    ref = ImageRef(src)
    ref.add(clean_text(alt), "social_alt")
    ref.add(post.text, "context")
    post.images.append(ref)
