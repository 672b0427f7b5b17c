"""`clean(config)`: RAW Parquet files -> CLEAN shards + index + manifest, on Dask.

Three passes, each a set of independent tasks, so nothing but small metadata ever reaches the client:
1. inspect every input (footer, row counts, sha256) -- bad files are reported and skipped, or fail with strict;
2. decide every row on the workers (`pipeline.partition`), staging survivors next to the new dataset version;
3. on the client, deduplicate globally (`pipeline.dedup`) and split; then write the shards on the workers.
The new version is assembled beside the old one and swapped in atomically (`pipeline.dataset`); a dataset at a URL
is assembled on local disk and published to the store, its manifest last (`pipeline.dataset.publish_remote`).
"""

from __future__ import annotations

import logging
import shutil
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa

from data_schemas import TAKEDOWN_PENDING, BlockEntry, Blocklist, atomic_write_parquet, storage
from pipeline.config import CleanConfig
from pipeline.dataset import (
    INDEX_SCHEMA,
    Previous,
    link_previous,
    load_previous,
    locked,
    new_work_dir,
    publish_remote,
    recover,
    recover_remote,
    swap_in,
    write_index,
)
from pipeline.dedup import pdq_bytes
from pipeline.engine import dask_client
from pipeline.inputs import CleanError, InputFile, discover, inspect_input, plan_partitions
from pipeline.partition import PartitionResult, process_partition
from pipeline.progress import gather
from pipeline.rehash import list_rehashed, prepare_index
from pipeline.report import build_manifest
from pipeline.resolve import Resolution, resolve
from pipeline.shards import plan_shards, write_shard

log = logging.getLogger(__name__)


def load_blocklist(cfg: CleanConfig, out: Path | str) -> Blocklist:
    blocklist = Blocklist.load(out)
    if cfg.blocklist is not None:
        if not storage.exists(cfg.blocklist):
            raise CleanError(f"blocklist {cfg.blocklist} not found; fix the path or drop --blocklist")
        extra = Blocklist.load(cfg.blocklist)
        for kind, values in (("url", extra.urls), ("domain", extra.domains), ("sha256", extra.sha256)):
            for value in values:
                blocklist.add(BlockEntry(kind=kind, value=value))
    return blocklist


def clean(config: CleanConfig) -> Path:
    """Run the clean stage; returns the dataset directory once its manifest is written and swapped in."""
    remote = storage.is_url(config.out)
    out = config.out if remote else config.out.resolve()
    with locked(out):
        if remote:
            recover_remote(out)
        else:
            recover(out)
        _finish_takedown(out)
        previous = load_previous(out)
        files = discover(config.raw)
        blocklist = load_blocklist(config, out)
        work = new_work_dir(out)
        try:
            with dask_client(config, local_directory=work / "_staging") as client:
                changed = _run(client, config, files, previous, blocklist, out=out, work=work)
            if changed and remote:
                changed.write(work)
                publish_remote(work, out)  # the manifest, last
            elif changed:
                link_previous(out, work)
                changed.write(work)  # the manifest, last
                swap_in(work, out)
            else:
                shutil.rmtree(work)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
    return out


def _finish_takedown(out: Path | str) -> None:
    """A takedown killed halfway is finished first (under the lock this run holds), so a new version is never
    built around rows that are due for removal, nor around a manifest that does not yet count them."""
    if storage.exists(storage.join(out, TAKEDOWN_PENDING)):
        if storage.is_url(out):
            raise CleanError(f"{out}: an unfinished takedown is pending; takedown works on local datasets only")
        from pipeline.tools.takedown import finish_pending

        log.warning("%s: finishing an interrupted takedown before cleaning", out)
        finish_pending(out)


def _check_inputs(infos: list[InputFile], previous: Previous, strict: bool) -> tuple[list, list, list]:
    bad = [i for i in infos if i.error]
    if bad and strict:
        raise CleanError("bad RAW input(s), stopping (--strict): " + "; ".join(f"{i.path}: {i.error}" for i in bad))
    for info in bad:
        log.error("skipping RAW input %s: %s", info.path, info.error)
    seen = {i.get("sha256") for i in previous.manifest.inputs} if previous.manifest else set()
    already = [i for i in infos if not i.error and i.sha256 in seen]
    for info in already:
        log.info("%s: already in the dataset (same sha256), not read again", info.path)
    todo = [i for i in infos if not i.error and i.sha256 not in seen]
    return todo, [{"path": i.path, "reason": i.error} for i in bad], [i.path for i in already]


def _partitions(client, cfg: CleanConfig, todo: list[InputFile], blocklist: Blocklist, work: Path):
    specs = plan_partitions(todo, partition_rows=cfg.partition_rows)
    cfg_f, blocklist_f = client.scatter([cfg, blocklist], broadcast=True)
    futures = client.map(process_partition, specs, cfg=cfg_f, blocklist=blocklist_f,
                         staging_dir=str(work / "_staging"), pure=False)
    failed: dict[int, str] = {}

    def on_result(result: PartitionResult) -> None:
        if result.error and cfg.strict:
            raise CleanError(f"bad RAW input, stopping (--strict): {result.error}")
        if result.error:
            failed.setdefault(result.input_index, result.error)

    results = gather(client, futures, "clean rows", progress=cfg.progress, on_result=on_result)
    for idx, error in failed.items():
        log.error("skipping RAW input %s: %s", todo_path(todo, idx), error)
    return [r for r in sorted(results, key=lambda r: r.index) if r.input_index not in failed], failed


def todo_path(todo: list[InputFile], index: int) -> str:
    return next(i.path for i in todo if i.index == index)


def _run(client, cfg: CleanConfig, files: list, previous: Previous, blocklist: Blocklist, *, out: Path | str,
         work: Path):
    futures = client.map(inspect_input, list(range(len(files))), [str(f) for f in files], pure=False)
    infos = sorted(gather(client, futures, "inspect inputs", progress=cfg.progress), key=lambda i: i.index)
    todo, skipped, already = _check_inputs(infos, previous, cfg.strict)
    if not todo and not skipped:
        log.info("%s: nothing new to clean", out)
        return None
    rehashed = prepare_index(client, cfg, previous, out=out)  # refuses an index of other hashes unless told
    previous = replace(previous, index=rehashed) if rehashed is not None else previous
    results, failed = _partitions(client, cfg, todo, blocklist, work)
    skipped += [{"path": todo_path(todo, i), "reason": e} for i, e in failed.items()]
    todo = [i for i in todo if i.index not in failed]
    res = resolve(results, previous, cfg)
    plans = plan_shards(res.staged, res.rows, res.nbytes, res.split, res.cluster, shard_rows=cfg.shard_rows,
                        shard_bytes=cfg.shard_bytes, first_number=_next_numbers(previous))
    futures = client.map(write_shard, plans, dataset_dir=str(work), row_group_rows=cfg.row_group_rows, pure=False)
    shards = sorted(gather(client, futures, "write shards", progress=cfg.progress), key=lambda s: s.name)
    run = previous.run
    index_name = write_index(work, run, _index_table(res, run))
    rejected = _move_rejected(results, res, work, run) if cfg.write_rejected else []
    drops = Counter()
    for r in results:
        drops.update(r.drops)
    drops.update(res.dup_drops)
    manifest = build_manifest(previous.manifest, run=run, parameters=cfg.parameters(),
                              inputs=[i.record() for i in todo], rows_in=sum(r.rows_in for r in results),
                              drops=drops, per_source=res.per_source, shards=shards, skipped=skipped,
                              already=already, index_name=index_name, rejected=rejected)
    if rehashed is not None:
        list_rehashed(manifest, work, run, rehashed)
    return manifest


def _next_numbers(previous: Previous) -> dict[str, int]:
    numbers: dict[str, int] = {}
    for shard in previous.manifest.shards if previous.manifest else []:
        number = int(Path(shard.name).stem.rsplit("-", 1)[-1])
        numbers[shard.split] = max(numbers.get(shard.split, 0), number + 1)
    return numbers


def _index_table(res: Resolution, run: int) -> pa.Table:
    n = len(res.keys)
    return pa.table({
        "key": pa.array(res.keys.tolist(), pa.string()),
        "sha256": pa.array([s.decode() for s in res.sha256.tolist()], pa.string()),
        "phash": pa.array(res.phash, pa.uint64()),
        "phash_flip": pa.array(res.phash_flip, pa.uint64()),
        "pdq": pa.array(pdq_bytes(res.pdq), pa.binary(32)),
        "pdq_flip": pa.array(pdq_bytes(res.pdq_flip), pa.binary(32)),
        "colour": pa.array([c.tobytes() for c in res.colour], pa.binary(32)),
        "aspect": pa.array(res.aspect, pa.float32()),
        "cluster": pa.array(res.cluster.tolist(), pa.string()),
        "split": pa.array(res.split.tolist(), pa.string()),
        "run": pa.array(np.full(n, run, np.int32), pa.int32()),
    }, schema=INDEX_SCHEMA)


def _move_rejected(results: list[PartitionResult], res: Resolution, work: Path, run: int) -> list[str]:
    names = []
    (work / "rejected").mkdir(exist_ok=True)
    for r in results:
        if r.rejected:
            name = f"rejected/r{run:05d}-p{r.index:06d}.parquet"
            shutil.move(r.rejected, work / name)
            names.append(name)
    if len(res.dup_keys):
        name = f"rejected/r{run:05d}-duplicates.parquet"
        atomic_write_parquet(work / name, pa.table({
            "id": pa.array(res.dup_keys.tolist(), pa.string()),
            "reason": pa.array(res.dup_reasons.tolist(), pa.string()),
            "dup_cluster": pa.array(res.dup_clusters.tolist(), pa.string()),
        }))
        names.append(name)
    return names


__all__ = ["CleanConfig", "CleanError", "clean"]
