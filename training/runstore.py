"""A run directory at a URL (``s3://bucket/runs/<id>``, any fsspec filesystem; `data_schemas.storage`).

Training writes its run into a local mirror (torch, safetensors, SQLite-free JSONL logs all want local files) and
publishes it to the store: each checkpoint as soon as it is saved (its ``meta.json``, the mark of a complete
checkpoint, last; every file through a temporary key, then its final key), pruned checkpoints removed only after
the newer one is complete there, and the whole run at the end.  A resume pulls the newest complete checkpoint
and the run's own files back into the mirror first, so any machine can continue a run from the store.

The mirror: ``$MMPIPE_RUN_CACHE`` (default: the system temporary directory) ``/mmpipe-runs/<hash of the URL>``.
"""

from __future__ import annotations

import logging
import os
import posixpath
import shutil
import tempfile
import uuid
from pathlib import Path

from data_schemas import storage

log = logging.getLogger("mmpipe.train")
ENV_CACHE = "MMPIPE_RUN_CACHE"
CKPT_DIR, _PREFIX, _META = "checkpoints", "step-", "meta.json"


def mirror_dir(url: str) -> Path:
    base = Path(os.environ.get(ENV_CACHE) or tempfile.gettempdir()) / "mmpipe-runs"
    return base / uuid.uuid5(uuid.NAMESPACE_URL, url).hex


def _remote_checkpoints(url: str) -> list[str]:
    """Names of the complete checkpoints at the URL (those with their meta.json), oldest first."""
    root = storage.join(url, CKPT_DIR)
    if not storage.exists(root):
        return []
    fs, path = storage.filesystem(root)
    names = {posixpath.basename(posixpath.dirname(k)) for k in fs.find(path) if k.endswith("/" + _META)}
    return sorted((n for n in names if n.startswith(_PREFIX)), key=lambda n: int(n[len(_PREFIX):]))


def pull(url: str, local: Path) -> None:
    """Make ``local`` the run at ``url``: its own files, and of its checkpoints only the newest complete one."""
    shutil.rmtree(local, ignore_errors=True)
    local.mkdir(parents=True)
    if not storage.exists(url):
        return
    fs, root = storage.filesystem(url)
    ckpts = _remote_checkpoints(url)
    keep = f"{CKPT_DIR}/{ckpts[-1]}/" if ckpts else None
    for key in fs.find(root):
        rel = key[len(root):].lstrip("/")
        if any(p.startswith(".") for p in rel.split("/")):
            continue
        if rel.startswith(f"{CKPT_DIR}/") and not (keep and rel.startswith(keep)):
            continue
        storage.fetch_file(storage.join(url, rel), local / rel)
    log.info("pulled %s into %s (checkpoint %s)", url, local, ckpts[-1] if ckpts else "none")


def push_checkpoint(local_ckpt: Path, url: str) -> None:
    """Publish the run's own files (config, tokenizer, logs: a resume elsewhere needs them), then one complete
    local checkpoint, its meta.json last; then drop the remote checkpoints the local run pruned."""
    _push_files(local_ckpt.parent.parent, url)
    dest = storage.join(url, CKPT_DIR, local_ckpt.name)
    storage.upload_tree(local_ckpt, dest, skip={_META})
    storage.publish_file(local_ckpt / _META, storage.join(dest, _META))
    kept = {p.name for p in local_ckpt.parent.iterdir() if p.name.startswith(_PREFIX)}
    fs, root = storage.filesystem(storage.join(url, CKPT_DIR))
    for key in fs.ls(root, detail=False):  # pruned ones, and the unfinished upload of a killed run
        name = posixpath.basename(key.rstrip("/"))
        if name.startswith(_PREFIX) and name not in kept:
            storage.remove(storage.join(url, CKPT_DIR, name), recursive=True)


def _push_files(local: Path, url: str) -> None:
    for src in sorted(p for p in local.rglob("*") if p.is_file()):
        rel = src.relative_to(local).as_posix()
        if not rel.startswith(f"{CKPT_DIR}/") and not any(p.startswith(".") for p in rel.split("/")):
            storage.publish_file(src, storage.join(url, rel))


def push_run(local: Path, url: str) -> None:
    """Publish the finished run: its files and its newest checkpoint, where not published yet."""
    ckpts = sorted((p for p in (local / CKPT_DIR).glob(f"{_PREFIX}*") if (p / _META).exists()),
                   key=lambda p: int(p.name[len(_PREFIX):])) if (local / CKPT_DIR).is_dir() else []
    if ckpts and ckpts[-1].name not in _remote_checkpoints(url):
        push_checkpoint(ckpts[-1], url)
    _push_files(local, url)
