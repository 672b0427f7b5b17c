"""Crawl summaries: one per source (from the Scrapy stats of its process) and the merged `crawl_summary.json`."""

from __future__ import annotations

import fcntl
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from data_schemas import atomic_write_json
from data_schemas import reasons as R

SUMMARY_NAME = "crawl_summary.json"
_COUNTS = ("pages", "posts", "listing_pages", "api_pages", "discovery_requests", "pages_skipped_seen",
           "pages_incomplete", "images", "image_bytes", "rows", "files", "images_reused_stored", "stopped_at_limit")
OPT_OUT_REASONS = (R.OPT_OUT_PAGE, R.OPT_OUT_IMAGE, R.OPT_OUT_TDMREP)


def _iso(value) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


def source_summary(source, stats: dict[str, Any]) -> dict[str, Any]:
    """Everything a run of one source did, under stable keys (drops use `data_schemas.reasons` names)."""
    get = stats.get
    drops = {k.split("/", 2)[2]: v for k, v in stats.items() if k.startswith("mmpipe/drops/")}
    errors = {k.split("/", 2)[2]: v for k, v in stats.items() if k.startswith("mmpipe/errors/")}
    spider_exc = sum(v for k, v in stats.items() if k.startswith("spider_exceptions/"))
    if spider_exc:
        errors["spider_exception"] = spider_exc
    start, finish = get("start_time"), get("finish_time") or datetime.now(timezone.utc)
    duration = (finish - start).total_seconds() if isinstance(start, datetime) else None
    summary: dict[str, Any] = {
        "source": source.name, "kind": source.kind,
        "started_at": _iso(start), "finished_at": _iso(finish), "duration_s": duration,
        "finish_reason": get("finish_reason"),
        **{k: int(get(f"mmpipe/{k}", 0) or 0) for k in _COUNTS},
        "drops": dict(sorted(drops.items())),
        "opt_outs": {k: v for k, v in sorted(drops.items()) if k in OPT_OUT_REASONS},
        # pages refused before fetching (robots.txt, tdmrep.json, blocklist): counted once each in `drops`
        "pages_refused": {k.split("/", 2)[2]: v for k, v in sorted(stats.items())
                          if k.startswith("mmpipe/pages_refused/")},
        "refused_urls": get("mmpipe/refused_urls", {}),
        # URL lists / archives: input rows or records skipped, "file:row: reason: detail" (the first 1000), and
        # the error that stopped the source when an input could not be read at all
        "input_rejects": list(get("mmpipe/input_rejects", []) or []),
        "input_error": get("mmpipe/input_error"),
        "errors": dict(sorted(errors.items())),
        "requests": int(get("downloader/request_count", 0) or 0),
        "responses": int(get("downloader/response_count", 0) or 0),
        "http_status": {k.rsplit("/", 1)[1]: v for k, v in sorted(stats.items())
                        if k.startswith("downloader/response_status_count/")},
        "robots_txt_fetched": int(get("robotstxt/request_count", 0) or 0),
        "backoff": {k.split("/", 2)[2]: v for k, v in sorted(stats.items()) if k.startswith("mmpipe/backoff/")},
        "limit_hit": bool(get("mmpipe/limit_hit", False)),
        # which limits stopped it: max_pages / max_images (work left undone), max_seconds (finish_reason
        # closespider_timeout; requests not made or cut at the deadline are `stopped_at_limit`, not errors)
        "limits_hit": list(get("mmpipe/limits_hit", []) or []),
        # requests each limit stopped (the discovery bounds included: max_discovery, max_sitemap_depth,
        # max_api_pages, max_stale_pages)
        "limit_cuts": _prefixed(stats, "mmpipe/limit_cuts/"),
        # robots.txt: hosts found unreachable (disallowed), files cut at 500 KiB, requests to ignore_robots hosts
        "robots": _prefixed(stats, "mmpipe/robots/"),
        "ignore_robots": list(source.ignore_robots),
        "duplicates_skipped": int(get("mmpipe/duplicates_skipped", 0) or 0),
        "files_written": list(get("mmpipe/files_written", []) or []),
        "store": get("mmpipe/store", {}),
    }
    if duration:
        summary["pages_per_s"] = round(summary["pages"] / duration, 2)
        summary["images_per_s"] = round(summary["images"] / duration, 2)
        summary["mb_per_s"] = round(summary["image_bytes"] / 1e6 / duration, 3)
    return summary


def _prefixed(stats: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {k[len(prefix):]: v for k, v in sorted(stats.items()) if k.startswith(prefix)}


def _add(total: dict[str, int], part: dict[str, int]) -> None:
    for k, v in part.items():
        total[k] = total.get(k, 0) + v


def merge(summaries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    overall: dict[str, Any] = {k: 0 for k in _COUNTS}
    overall.update({"drops": {}, "opt_outs": {}, "errors": {}, "pages_refused": {}, "limit_cuts": {}, "requests": 0,
                    "duration_s": 0.0})
    for s in summaries.values():
        for k in (*_COUNTS, "requests"):
            overall[k] += int(s.get(k, 0) or 0)
        for key in ("drops", "opt_outs", "errors", "pages_refused", "limit_cuts"):
            _add(overall[key], s.get(key, {}))
        overall["duration_s"] = max(overall["duration_s"], s.get("duration_s") or 0.0)
    return {"updated_at": datetime.now(timezone.utc).isoformat(), "overall": overall,
            "per_source": dict(sorted(summaries.items()))}


def merge_shards(shards: list[dict[str, Any]]) -> dict[str, Any]:
    """One source's summary from its shard processes' summaries (counts added, durations: the longest)."""
    out = dict(shards[0])
    for key in (*_COUNTS, "requests", "responses", "robots_txt_fetched", "duplicates_skipped"):
        out[key] = sum(int(s.get(key, 0) or 0) for s in shards)
    for key in ("drops", "opt_outs", "errors", "pages_refused", "http_status", "backoff", "limit_cuts", "robots"):
        total: dict[str, int] = {}
        for s in shards:
            _add(total, s.get(key, {}))
        out[key] = dict(sorted(total.items()))
    out["refused_urls"] = {}
    for s in shards:
        for reason, urls in (s.get("refused_urls") or {}).items():
            out["refused_urls"].setdefault(reason, []).extend(urls)
    out["files_written"] = [f for s in shards for f in s.get("files_written", [])]
    out["started_at"] = min(s.get("started_at") or "" for s in shards) or None
    out["finished_at"] = max(s.get("finished_at") or "" for s in shards) or None
    out["duration_s"] = max(s.get("duration_s") or 0.0 for s in shards)
    out["limit_hit"] = any(s.get("limit_hit") for s in shards)
    out["limits_hit"] = sorted({lim for s in shards for lim in s.get("limits_hit", [])})
    out["status"] = "ok" if all(s.get("status") == "ok" for s in shards) else "failed"
    out["shard"] = f"{len(shards)} processes"
    if out["duration_s"]:
        for key, num, scale in (("pages_per_s", "pages", 1), ("images_per_s", "images", 1),
                                ("mb_per_s", "image_bytes", 1e6)):
            out[key] = round(out[num] / scale / out["duration_s"], 3)
    return out


def summaries_dir(state_dir: Path) -> Path:
    return Path(state_dir) / "summaries"


def write_merged(out_dir: Path, state_dir: Path) -> dict[str, Any]:
    """Merge every source's latest summary into `<out>/crawl_summary.json` (locked: sources finish in parallel)."""
    folder = summaries_dir(state_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        parts = {}
        for path in sorted(folder.glob("*.json")):
            try:
                parts[path.stem] = json.loads(path.read_text())
            except ValueError:
                continue
        merged = merge(parts)
        atomic_write_json(Path(out_dir) / SUMMARY_NAME, merged)
    return merged
