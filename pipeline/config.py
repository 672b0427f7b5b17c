"""The clean stage's one typed configuration object: the CLI, the flows, the tools and the tests all build this."""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from data_schemas import ROLES, storage
from pipeline.signals import HASH_VERSION

RESIZE_MODES = ("keep_ratio_largest", "center_crop", "no")
# A scheduler address: tcp:// or tls:// (Dask's TCP comms), a host name, IPv4 or [IPv6] address, and a port.  No
# other scheme (inproc://, ucx://, ws://), no user, path or query: the client unpickles what the scheduler sends,
# so the address is trusted as much as the code, and must name exactly one machine of your own cluster.
_SCHEDULER = re.compile(r"^(?:(tcp|tls)://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)"
                        r":([0-9]{1,5})$")


def scheduler_address(address: str) -> str:
    """``address`` as Dask's ``tcp://host:port`` / ``tls://host:port``; ValueError for any other form."""
    m = _SCHEDULER.match(address.strip()) if isinstance(address, str) else None
    if m is None or not 0 < int(m.group(3)) < 65536:
        raise ValueError(f"scheduler {address!r} is not a Dask scheduler address: give tcp://HOST:PORT or "
                         "tls://HOST:PORT (e.g. tcp://10.0.0.5:8786)")
    return f"{m.group(1) or 'tcp'}://{m.group(2)}:{int(m.group(3))}"


@dataclass
class CleanConfig:
    """Every knob of `mmpipe clean`.  Defaults follow DataComp's "basic" filtering and img2dataset's resize.

    ``raw`` is a directory (every ``*.parquet`` below it, sorted) or an explicit list of RAW files.  ``out`` is the
    dataset directory; if it already holds a dataset the run is incremental (only new rows are added).
    """

    raw: Path | str | list[Path | str]
    out: Path | str
    scheduler: str | None = None  # address of a running Dask scheduler; None starts a LocalCluster
    n_workers: int | None = None  # LocalCluster processes; None = one per core
    threads_per_worker: int = 1  # Pillow work holds the GIL for most of its time: processes scale, threads don't
    # text
    min_words: int = 3  # DataComp basic: more than 2 words ...
    min_chars: int = 6  # ... and more than 5 characters
    max_chars: int = 1000
    langs: list[str] | None = None  # ISO 639-1 allow-list; None = every language
    roles: list[str] | None = None  # RAW roles to keep (lead, body, teaser); None = all; rows without a role
    # (RAW version 1 files, feed-only images) are always kept
    # image
    min_side: int = 200
    max_aspect: float = 3.0
    max_pixels: int = 89_478_485  # Pillow's own decompression-bomb threshold; the header is checked before decoding
    resize_mode: str = "keep_ratio_largest"
    image_size: int = 512
    jpeg_quality: int = 90
    # dedup and split (the rule and the measurements behind these defaults: pipeline/README.md "Near duplicates")
    phash_threshold: int = 8  # pHash (or mirrored pHash) Hamming distance for a candidate pair, of 64 bits
    pdq_threshold: int = 90  # PDQ Hamming distance, of 256 bits, that confirms a candidate ...
    pdq_threshold_mirrored: int = 70  # ... one found through the mirrored pHash (symmetric compositions pass more)
    colour_threshold: float = 12.0  # ... and mean colour-layout difference (0..255 chromaticity), unless one is grey
    aspect_tolerance: float = 0.1  # ... and |log(aspect ratio) difference| of the hashed pictures (0.1: ~10%)
    val_fraction: float = 0.05
    seed: int = 0
    # output
    shard_rows: int = 10_000
    shard_bytes: int = 512 * 1024 * 1024
    row_group_rows: int = 1000
    partition_rows: int = 256  # RAW rows per task (whole row groups; the crawler writes 64): balances the workers,
    # bounds their memory, and does not depend on the cluster size (so neither do the output bytes)
    write_rejected: bool = False
    rehash_index: bool = False  # recompute an older dataset's dedup index from its stored images (see README)
    rebuild: bool = False  # rebuild the whole dataset from its RAW inputs (needed to apply most changed parameters)
    rejected_images: bool = False  # with write_rejected: keep the original image bytes of dropped rows too
    # robustness
    strict: bool = False  # fail on the first unreadable or schema-invalid RAW file instead of skipping it
    blocklist: Path | None = None  # extra takedown list, on top of <out>/_blocklist.jsonl
    progress: bool = True

    def __post_init__(self) -> None:
        # locations: a local Path, or a URL string (`data_schemas.storage`: s3://, any fsspec filesystem)
        if isinstance(self.raw, (list, tuple)):
            self.raw = [storage.location(p) for p in self.raw]
        else:
            self.raw = storage.location(self.raw)
        self.out = storage.location(self.out)
        if self.scheduler is not None:
            self.scheduler = scheduler_address(self.scheduler)
        if self.blocklist is not None:
            self.blocklist = storage.location(self.blocklist)
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize_mode '{self.resize_mode}' is not one of {RESIZE_MODES}")
        if not 0.0 <= self.val_fraction <= 1.0:
            raise ValueError(f"val_fraction {self.val_fraction} must be within [0, 1]")
        if not 0 <= self.phash_threshold < 32:
            raise ValueError(f"phash_threshold {self.phash_threshold} must be within [0, 31]")
        if self.roles is not None:
            bad = sorted(set(self.roles) - set(ROLES))
            if bad:
                raise ValueError(f"roles {bad} are not RAW roles; choose from {ROLES}")
            self.roles = sorted(set(self.roles))
        for name in ("pdq_threshold", "pdq_threshold_mirrored"):
            if not 0 <= getattr(self, name) <= 256:
                raise ValueError(f"{name} {getattr(self, name)} must be within [0, 256]")
        if not 0 <= self.colour_threshold <= 255:
            raise ValueError(f"colour_threshold {self.colour_threshold} must be within [0, 255]")
        if self.langs is not None:
            self.langs = sorted({lang.strip().lower() for lang in self.langs if lang.strip()}) or None
        for name in ("shard_rows", "shard_bytes", "row_group_rows", "partition_rows", "image_size", "min_side"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")

    @property
    def workers(self) -> int:
        return self.n_workers or max(1, os.cpu_count() or 1)

    def dedup_rule(self) -> dict[str, Any]:
        """The near-duplicate rule's keyword arguments for `pipeline.dedup.dedup`."""
        return {"threshold": self.phash_threshold, "pdq_threshold": self.pdq_threshold,
                "pdq_threshold_mirrored": self.pdq_threshold_mirrored, "colour_threshold": self.colour_threshold,
                "aspect_tolerance": self.aspect_tolerance}

    def parameters(self) -> dict[str, Any]:
        """What goes into the manifest: everything that changes the output's bytes, nothing machine-specific."""
        skip = {"raw", "out", "scheduler", "n_workers", "threads_per_worker", "progress", "strict", "rehash_index",
                "rebuild"}
        params = {k: v for k, v in asdict(self).items() if k not in skip}
        params["blocklist"] = str(self.blocklist) if self.blocklist else None
        params["dedup_hashes"] = HASH_VERSION  # what the index's hashes mean; a later run checks it
        return params


@dataclass
class CurateConfig:
    """Every knob of `mmpipe curate`: model-based filters over an existing dataset, written as a new version.

    ``scores``: a scores directory (``mmpipe score``'s output), or its name under ``<data>/_scores/``; None: the
    only one there.  ``out``: the new version's directory (default ``<data>-curated`` beside the parent).
    Alignment filter as DataComp's CLIP-score filter: keep the ``keep_top`` fraction of rows with the highest
    alignment and/or those at or above ``min_alignment``; semantic dedup as SemDeDup at cosine
    ``semantic_threshold``.  Defaults: the settings in the issue that introduced the pass (DataComp kept 30-70% by
    CLIP score; SemDeDup's duplicates sit at cosine 0.9-0.99); BENCHMARKS.md has what they do on the demo.
    Only rows of ``splits`` are filtered, so a curated version is evaluated on the same val pairs as its parent.
    """

    data: Path
    scores: Path | str | None = None
    out: Path | None = None
    keep_top: float | None = 0.7
    min_alignment: float | None = None
    semantic_threshold: float | None = 0.95
    # SemDeDup never drops more than this share of the rows it sees: in an embedding space where everything looks
    # alike (a weak or collapsed scorer) the threshold is raised to drop exactly this share, most similar first
    semantic_max_drop: float | None = 0.1
    splits: tuple[str, ...] = ("train",)
    cluster_size: int = 1000  # SemDeDup: k = rows / cluster_size k-means clusters
    kmeans_iters: int = 20
    seed: int = 0
    report: bool = True  # the alignment histogram and a sheet of the lowest- and highest-scored pairs in _curate/
    progress: bool = True

    def __post_init__(self) -> None:
        self.data = Path(self.data)
        self.out = Path(self.out) if self.out is not None else self.data.parent / f"{self.data.name}-curated"
        self.splits = tuple(self.splits)
        if self.keep_top is not None and not 0.0 < self.keep_top <= 1.0:
            raise ValueError(f"keep_top {self.keep_top} must be within (0, 1]")
        if self.semantic_threshold is not None and not -1.0 <= self.semantic_threshold <= 1.0:
            raise ValueError(f"semantic_threshold {self.semantic_threshold} is a cosine: within [-1, 1]")
        if self.semantic_max_drop is not None and not 0.0 <= self.semantic_max_drop <= 1.0:
            raise ValueError(f"semantic_max_drop {self.semantic_max_drop} must be within [0, 1]")
        if not set(self.splits) <= {"train", "val"} or not self.splits:
            raise ValueError(f"splits {self.splits}: choose from train, val")
        if self.cluster_size < 2 or self.kmeans_iters < 1:
            raise ValueError("cluster_size must be >= 2 and kmeans_iters >= 1")
        if self.data.resolve() == self.out.resolve():
            raise ValueError(f"{self.out}: curate writes a new version beside its parent, not over it; choose "
                             "another --out")

    def parameters(self) -> dict[str, Any]:
        skip = {"data", "out", "scores", "progress", "report"}
        return {k: v for k, v in asdict(self).items() if k not in skip}
