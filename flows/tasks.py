"""Prefect tasks: one per stage call.  Each converts nothing and decides nothing beyond skip/cache checks; it calls
the stage's entry function, logs what is happening, publishes artifacts and names the stage when it fails.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed

from data_schemas import BLOCKLIST_NAME, Manifest
from data_schemas.layout import find
from flows import artifacts, state


class StageFailed(RuntimeError):
    """A stage raised; the message names the stage, the cause and what a re-run will reuse."""


@contextlib.contextmanager
def stage_errors(stage: str, hint: str) -> Iterator[None]:
    try:
        yield
    except StageFailed:
        raise
    except Exception as exc:  # noqa: BLE001 - any stage error becomes one readable flow failure
        text = str(exc).rstrip(".")
        if not text.startswith(stage):  # stage errors that already name themselves are not wrapped twice
            text = f"{stage} failed: {type(exc).__name__}: {text}"
        raise StageFailed(f"{text}. {hint}") from exc


@task(name="crawl-source", task_run_name="crawl {source}", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=30)
def crawl_source_task(crawl_config: Any, source: str, *, state_dir: Path, key: str, fresh_hours: float,
                      recrawl: bool) -> Any:
    """One source in its own Scrapy process; reuse a recent identical crawl unless ``recrawl``."""
    from crawlers.stage import crawl_source

    log = get_run_logger()
    if not recrawl:
        reused = state.reusable_crawl(state_dir, source, key, fresh_hours=fresh_hours, out=crawl_config.out)
        if reused is not None:
            log.info("source %s: reusing the crawl of %s (same settings, younger than %s h); set crawl.recrawl "
                     "to crawl again", source, reused.get("finished_at", "?"), fresh_hours)
            return Completed(data={**reused, "status": "reused"}, name="Cached",
                             message=f"reused the crawl of {reused.get('finished_at', '?')}")
    log.info("source %s: crawling into %s", source, crawl_config.out)
    with stage_errors(f"crawl of source '{source}'", "RAW files already written are kept; a re-run resumes."):
        summary = dict(crawl_source(crawl_config, source))
    summary.setdefault("source", source)
    stamped = {**summary, "finished_at": state.now_iso()}
    state.record_crawl(state_dir, source, key, stamped)
    log.info("source %s: %s", source, _brief(summary))
    return {**stamped, "status": "crawled"}


def _brief(summary: dict[str, Any]) -> str:
    keys = ("pages", "images", "rows", "duration_s")
    parts = [f"{k} {summary[k]}" for k in keys if k in summary]
    drops = summary.get("drops") or {}
    if drops:
        parts.append("drops " + ", ".join(f"{k} {v}" for k, v in drops.items()))
    return "; ".join(parts) or "done"


@task(name="clean", task_run_name="clean", cache_policy=NO_CACHE)
def clean_task(clean_config: Any, *, state_dir: Path, force: bool) -> Any:
    """The Dask stage, skipped when its RAW inputs and parameters are unchanged and its dataset is intact."""
    from pipeline.clean import clean

    log = get_run_logger()
    extra = [p for p in (clean_config.blocklist, find(clean_config.out, BLOCKLIST_NAME)) if p is not None]
    with stage_errors("clean", "The RAW files are intact; fix the cause and re-run (the crawl will be reused)."):
        key = state.clean_key(clean_config.raw, clean_config.parameters(), extra)
        hit = None if force else state.cached_clean(state_dir, clean_config.out, key)
        if hit is not None:
            manifest = Manifest.read(clean_config.out)
            log.info("clean skipped: RAW inputs and parameters unchanged since %s and %s is intact "
                     "(%d rows); set clean.force to clean again", hit["finished_at"], clean_config.out,
                     manifest.rows_out)
            artifacts.publish_clean(clean_config.out, manifest, cached=True)
            return Completed(data=_clean_result(clean_config.out, manifest, cached=True), name="Cached",
                             message="inputs and parameters unchanged")
        files = state.raw_files(clean_config.raw)
        if not files:
            raise StageFailed(f"clean: no RAW *.parquet files in {clean_config.raw}: crawl first (crawl.enabled)")
        log.info("cleaning %d RAW file(s) from %s into %s", len(files), clean_config.raw, clean_config.out)
        out = Path(clean(clean_config))
        manifest = Manifest.read(out)
        state.record_clean(state_dir, out, key)
    log.info("clean: %d rows in, %d kept, drops %s; %d shard(s)", manifest.rows_in, manifest.rows_out,
             manifest.drops, len(manifest.shards))
    artifacts.publish_clean(out, manifest, cached=False)
    return _clean_result(out, manifest, cached=False)


def _clean_result(out: Path, manifest: Manifest, *, cached: bool) -> dict[str, Any]:
    return {"dataset": str(out), "cached": cached, "rows_in": manifest.rows_in, "rows_out": manifest.rows_out,
            "drops": dict(manifest.drops), "per_source": dict(manifest.per_source),
            "shards": [s.name for s in manifest.shards]}


class _Forward(logging.Handler):
    def __init__(self, target: Any):
        super().__init__(logging.INFO)
        self.target = target

    def emit(self, record: logging.LogRecord) -> None:
        self.target.log(record.levelno, record.getMessage())


@contextlib.contextmanager
def forward_logs(name: str, target: Any) -> Iterator[None]:
    """Send a stage's own log records (``logging.getLogger(name)``) to the task's run logger, so the Prefect UI
    shows them, for the duration of the block."""
    handler = _Forward(target)
    logger = logging.getLogger(name)
    old_level = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


@task(name="train", task_run_name="train", cache_policy=NO_CACHE)
def train_task(train_config: Any, *, nproc: int) -> dict[str, Any]:
    log = get_run_logger()
    hint = "The dataset and earlier checkpoints are intact; a re-run with train.resume continues from the latest."
    with stage_errors("train", hint):
        Manifest.read(train_config.data)  # a missing/broken dataset fails here, with the manifest's own message
        log.info("training preset %s on %s into %s (%s process(es), resume=%s)", train_config.preset,
                 train_config.data, train_config.out, nproc, train_config.resume)
        if nproc > 1:
            from training.launch import launch_torchrun

            run_dir = Path(launch_torchrun(train_config, nproc))
        else:
            from training.train import train

            with forward_logs("mmpipe.train", log):  # the step lines the trainer logs where there is no terminal
                run_dir = Path(train(train_config))
    metrics = artifacts.read_metrics(run_dir)
    last = metrics[-1] if metrics else {}
    log.info("training finished: %s; last metrics %s", run_dir, last)
    artifacts.publish_training(run_dir)
    return {"run": str(run_dir), "last": last, "plots": [str(p) for p in artifacts.loss_plots(run_dir)]}


@task(name="evaluate", task_run_name="evaluate", cache_policy=NO_CACHE)
def evaluate_task(eval_config: Any) -> dict[str, Any]:
    import json

    from training.evaluate import evaluate
    from training.train import train_baseline

    log = get_run_logger()
    with stage_errors("evaluate", "The run's checkpoints are intact; re-run with train disabled to evaluate only."):
        if eval_config.baseline and eval_config.baseline_run is None:
            log.info("training the seed baseline of %s (once; reused by later evaluations)", eval_config.run)
            train_baseline(eval_config.run)
        log.info("evaluating %s", eval_config.run)
        path = Path(evaluate(eval_config))
        result = json.loads(path.read_text())
    headline = {k: v for k, v in artifacts.flatten(result).items() if k.endswith(("mean_R@1", "chance_R@1"))}
    log.info("evaluation written to %s: %s", path, headline)
    artifacts.publish_eval(path, result)
    return {"path": str(path), "result": result}


@task(name="score", task_run_name="score", cache_policy=NO_CACHE)
def score_task(score_config: Any) -> dict[str, Any]:
    """Embed every row of the dataset with round one's model (resumes where an interrupted score stopped)."""
    import json

    from training.score import score

    log = get_run_logger()
    with stage_errors("score", "Scored shards are kept; a re-run scores only the rest."):
        log.info("scoring %s with the model of %s", score_config.data, score_config.run)
        out = Path(score(score_config))
        info = json.loads((out / "scores.json").read_text())
    log.info("scores written to %s: %d rows", out, info["rows"])
    return {"scores": str(out), "rows": info["rows"], "model": info["model"]}


@task(name="curate", task_run_name="curate", cache_policy=NO_CACHE)
def curate_task(curate_config: Any) -> dict[str, Any]:
    """Alignment filter and semantic dedup into a new dataset version; publishes the histogram, cut and extremes."""
    from pipeline.curate import curate

    log = get_run_logger()
    with stage_errors("curate", "The dataset and its scores are intact; fix the cause and re-run."):
        out = Path(curate(curate_config))
        manifest = Manifest.read(out)
    cur = manifest.extra["curate"]
    log.info("curate: %d rows in, %d kept, drops %s, alignment cut %s", cur["rows_in"], cur["rows_out"],
             cur["drops"], cur["alignment_cut"])
    artifacts.publish_curate(out, manifest)
    return {"dataset": str(out), "rows_in": cur["rows_in"], "rows_out": cur["rows_out"], "drops": cur["drops"],
            "alignment_cut": cur["alignment_cut"]}
