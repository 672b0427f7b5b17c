"""Mastodon- and Bluesky-compatible JSON APIs over the planned statuses and posts.

Shapes follow real responses (Mastodon 4.x statuses as recorded in the Mastodon.py cassettes; the Bluesky AppView's
app.bsky.feed.defs#feedViewPost / #postView).  Paging is real too: Mastodon ``max_id``/``min_id``/``since_id`` with
a ``Link`` header, Bluesky opaque ``cursor`` strings that disappear on the last page.  Bluesky serves
getAuthorFeed, searchPosts and getFeed (the feed generators of ``plan_social.feed_generators``).
"""

from __future__ import annotations

import html
import json
from urllib.parse import urlencode

from crawlers.demo.model import Post, Status
from crawlers.demo.plan_base import Plan
from crawlers.demo.plan_social import feed_generators

JSON = "application/json; charset=utf-8"


def _ms(dt) -> str:
    return f"{dt:%Y-%m-%dT%H:%M:%S}.000Z"


def _account(acc, base: str) -> dict:
    return {"id": acc.id, "username": acc.username, "acct": acc.username, "display_name": acc.display_name,
            "locked": False, "bot": False, "discoverable": not acc.noindex, "indexable": not acc.noindex,
            "group": False, "created_at": f"{acc.created:%Y-%m-%d}T00:00:00.000Z", "note": "<p>Drawing shapes.</p>",
            "url": f"{base}/@{acc.username}", "uri": f"{base}/users/{acc.username}",
            "avatar": f"{base}/static/avatars/{acc.username}.jpg",
            "avatar_static": f"{base}/static/avatars/{acc.username}.jpg",
            "header": f"{base}/headers/original/missing.png", "header_static": f"{base}/headers/original/missing.png",
            "followers_count": 100 + int(acc.id), "following_count": 35, "statuses_count": 500,
            "last_status_at": "2024-05-20", "hide_collections": False, "noindex": acc.noindex, "emojis": [],
            "roles": [], "fields": []}


def _content(status: Status, base: str) -> str:
    text = status.text
    suffix = f" #{status.tag}"
    body = text[: -len(suffix)] if text.endswith(suffix) else text
    tag = (f"<a href=\"{base}/tags/{status.tag}\" class=\"mention hashtag\" rel=\"tag\">#<span>{status.tag}</span>"
           "</a>") if text.endswith(suffix) else ""
    return f"<p>{html.escape(body, quote=False)}{' ' + tag if tag else ''}</p>"


def status_json(status: Status, plan: Plan, base: str) -> dict:
    media = []
    for slot in status.slots:
        pic = plan.pictures[slot.pid]
        small_w = min(640, pic.width)
        small_h = round(pic.height * small_w / pic.width)
        media.append({
            "id": slot.media_id, "type": "image", "url": base + slot.url,
            "preview_url": base + slot.url.replace("/original.", "/small."), "remote_url": None,
            "preview_remote_url": None, "text_url": None,
            "meta": {"original": {"width": pic.width, "height": pic.height, "size": f"{pic.width}x{pic.height}",
                                  "aspect": pic.width / pic.height},
                     "small": {"width": small_w, "height": small_h, "size": f"{small_w}x{small_h}",
                               "aspect": small_w / small_h}},
            "description": slot.social_alt, "blurhash": "UvBEOP$%r9ofroa#bef$R5Wnb^ahVua#buf5"})
    for k in range(status.videos):
        vid = str(int(status.id) + 90 + k)
        media.append({"id": vid, "type": "gifv", "url": f"{base}/media/{vid}/original.mp4",
                      "preview_url": f"{base}/media/{vid}/small.png", "remote_url": None, "preview_remote_url": None,
                      "text_url": None, "meta": {"original": {"width": 640, "height": 360}}, "description": None,
                      "blurhash": None})
    return {
        "id": status.id, "created_at": _ms(status.created), "in_reply_to_id": None, "in_reply_to_account_id": None,
        "sensitive": status.sensitive, "spoiler_text": "", "visibility": "public", "language": status.lang,
        "uri": f"{base}/users/{status.account.username}/statuses/{status.id}", "url": base + status.path,
        "replies_count": 0, "reblogs_count": 0, "favourites_count": 0, "edited_at": None,
        "content": _content(status, base), "reblog": None, "application": {"name": "Web", "website": None},
        "account": _account(status.account, base), "media_attachments": media, "mentions": [],
        "tags": [{"name": status.tag, "url": f"{base}/tags/{status.tag}"}], "emojis": [], "card": None, "poll": None}


def _int(value: str | None, default: int | None = None) -> int | None:
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        return default


def mastodon_timeline(plan: Plan, base: str, path: str, params: dict[str, str]) -> tuple[int, dict, bytes]:
    """``path`` is /api/v1/timelines/public or /api/v1/timelines/tag/<tag>; statuses newest first."""
    if path.startswith("/api/v1/timelines/tag/"):
        tag = path.rsplit("/", 1)[1].lower()
        statuses = [s for s in plan.statuses if s.tag == tag]
    else:
        statuses = list(plan.statuses)  # every demo account is local, so local=true selects the same statuses
    limit = max(1, min(40, _int(params.get("limit"), 20)))
    max_id, since_id, min_id = (_int(params.get(k)) for k in ("max_id", "since_id", "min_id"))
    if max_id is not None:
        statuses = [s for s in statuses if int(s.id) < max_id]
    if since_id is not None:
        statuses = [s for s in statuses if int(s.id) > since_id]
    if min_id is not None:
        statuses = sorted((s for s in statuses if int(s.id) > min_id), key=lambda s: int(s.id))[:limit][::-1]
    page = statuses[:limit]
    headers = {"Content-Type": JSON}
    if page:
        keep = {k: v for k, v in params.items() if k in ("local", "only_media", "limit")}
        links = []
        if len(page) == limit:
            links.append(f"<{base}{path}?{urlencode({**keep, 'max_id': page[-1].id})}>; rel=\"next\"")
        links.append(f"<{base}{path}?{urlencode({**keep, 'min_id': page[0].id})}>; rel=\"prev\"")
        headers["Link"] = ", ".join(links)
    body = json.dumps([status_json(s, plan, base) for s in page], ensure_ascii=False).encode()
    return 200, headers, body


def _author(author, base: str) -> dict:
    labels = []
    if author.no_unauthenticated:
        labels.append({"src": author.did, "uri": f"at://{author.did}/app.bsky.actor.profile/self",
                       "cid": "bafyreihz5yvg5vt6dlhq4mqu4ri2bqbkmuyq2xqbuyvkdxvqhlkq7xgq3y",
                       "val": "!no-unauthenticated",
                       "cts": "2023-11-01T00:00:00.000Z"})
    return {"did": author.did, "handle": author.handle, "displayName": author.display_name,
            "avatar": f"{base}/static/avatars/{author.handle.split('.')[0]}.jpg",
            "associated": {"chat": {"allowIncoming": "following"}}, "labels": labels,
            "createdAt": "2023-06-01T00:00:00.000Z"}


def post_view(post: Post, plan: Plan, base: str) -> dict:
    record: dict = {"$type": "app.bsky.feed.post", "createdAt": _ms(post.created), "langs": [post.lang],
                    "text": post.text}
    view: dict = {"uri": post.uri, "cid": post.cid, "author": _author(post.author, base), "record": record,
                  "replyCount": 0, "repostCount": 0, "likeCount": 3, "quoteCount": 0,
                  "indexedAt": _ms(post.created), "labels": []}
    if post.slots:
        rec_images, view_images = [], []
        for slot in post.slots:
            pic = plan.pictures[slot.pid]
            ratio = {"width": pic.width, "height": pic.height}
            rec_images.append({"alt": slot.social_alt or "", "aspectRatio": ratio,
                               "image": {"$type": "blob", "ref": {"$link": slot.media_id}, "mimeType": "image/jpeg",
                                         "size": 40_000 + pic.width * 30}})
            view_images.append({"thumb": base + slot.url.replace("/feed_fullsize/", "/feed_thumbnail/"),
                                "fullsize": base + slot.url, "alt": slot.social_alt or "", "aspectRatio": ratio})
        record["embed"] = {"$type": "app.bsky.embed.images", "images": rec_images}
        view["embed"] = {"$type": "app.bsky.embed.images#view", "images": view_images}
    return view


def _page(items: list, params: dict[str, str], default: int) -> tuple[list, str | None]:
    limit = max(1, min(100, _int(params.get("limit"), default)))
    start = _int(params.get("cursor"), 0) or 0
    chunk = items[start:start + limit]
    nxt = start + limit
    return chunk, (str(nxt) if nxt < len(items) else None)


def _error(status: int, error: str, message: str) -> tuple[int, dict, bytes]:
    return status, {"Content-Type": JSON}, json.dumps({"error": error, "message": message}).encode()


def bluesky(plan: Plan, base: str, method: str, params: dict[str, str]) -> tuple[int, dict, bytes]:
    if method == "app.bsky.feed.getAuthorFeed":
        actor = params.get("actor", "")
        author = next((a for a in plan.authors if actor in (a.did, a.handle)), None)
        if author is None:
            return _error(400, "InvalidRequest", "Profile not found") if actor else _error(
                400, "InvalidRequest", "Error: Params must have the property \"actor\"")
        posts = [p for p in plan.posts if p.author is author]
        chunk, cursor = _page(posts, params, 50)
        out: dict = {"feed": [{"post": post_view(p, plan, base)} for p in chunk]}
    elif method == "app.bsky.feed.searchPosts":
        q = params.get("q", "").strip().lower()
        if not q:
            return _error(400, "InvalidRequest", "Error: Params must have the property \"q\"")
        terms = q.split()
        posts = [p for p in plan.posts if all(t in p.text.lower() for t in terms)]
        chunk, cursor = _page(posts, params, 25)
        out = {"posts": [post_view(p, plan, base) for p in chunk], "hitsTotal": len(posts)}
    elif method == "app.bsky.feed.getFeed":
        uri = params.get("feed", "")
        if not uri:
            return _error(400, "InvalidRequest", "Error: Params must have the property \"feed\"")
        posts = feed_generators(plan).get(uri)
        if posts is None:
            return _error(400, "UnknownFeed", f"Unknown feed: {uri}")
        chunk, cursor = _page(posts, params, 50)
        out = {"feed": [{"post": post_view(p, plan, base)} for p in chunk]}
    else:
        return _error(501, "MethodNotImplemented", f"Method Not Implemented: {method}")
    if cursor:
        out["cursor"] = cursor
    return 200, {"Content-Type": JSON}, json.dumps(out, ensure_ascii=False).encode()
