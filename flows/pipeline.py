"""The flows: `crawl_clean_train` and one flow per stage (`crawl`, `clean`, `train`).

Every flow takes one `PipelineConfig`.  Stage configs are built (and so validated) before anything runs, so a typo
in the train section fails the run in a second instead of after an hour of crawling.  A failed stage leaves the
outputs of earlier stages in place; re-running the same config reuses them (recent crawls, unchanged cleans).
"""

from __future__ import annotations

import concurrent.futures
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner

from flows import artifacts
from flows.config import PipelineConfig
from flows.convert import (
    crawl_key,
    to_clean_config,
    to_crawl_config,
    to_curate_config,
    to_eval_config,
    to_score_config,
    to_train_config,
)
from flows.tasks import (
    StageFailed,
    clean_task,
    crawl_source_task,
    curate_task,
    evaluate_task,
    score_task,
    train_task,
)

# Source crawls are subprocesses: threads only wait on them.  `parallel_sources` bounds how many run at once.
_RUNNER_THREADS = 16


def run_crawl(config: PipelineConfig) -> list[dict[str, Any]]:
    """One task per source, up to the crawl config's ``parallel_sources`` at a time, each retried on failure."""
    log = get_run_logger()
    section = config.crawl
    crawl = to_crawl_config(config)
    task = crawl_source_task.with_options(retries=section.retries, retry_delay_seconds=section.retry_delay_s)
    names = [s.name for s in crawl.sources]
    log.info("crawling %d source(s) into %s: %s", len(names), crawl.out, ", ".join(names))
    pending, running, results = list(names), {}, {}
    while pending or running:
        while pending and len(running) < crawl.parallel_sources:
            name = pending.pop(0)
            running[name] = task.submit(crawl, name, state_dir=config.state_dir, key=crawl_key(crawl, name),
                                        fresh_hours=section.fresh_hours, recrawl=section.recrawl)
        concurrent.futures.wait([f.wrapped_future for f in running.values()],
                                return_when=concurrent.futures.FIRST_COMPLETED)
        for name in [n for n, f in running.items() if f.wrapped_future.done()]:
            results[name] = _outcome(name, running.pop(name))
    summaries = [results[n] for n in names]
    artifacts.publish_crawl(summaries)
    _check_crawl(summaries, require_all=section.require_all)
    return summaries


def _outcome(name: str, future: Any) -> dict[str, Any]:
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - reported per source; the policy is applied in _check_crawl
        return {"source": name, "status": "failed", "error": str(exc)}


def _check_crawl(summaries: list[dict[str, Any]], *, require_all: bool) -> None:
    failed = [s for s in summaries if s["status"] == "failed"]
    if not failed:
        return
    detail = "\n".join(s["error"] for s in failed)
    if require_all or len(failed) == len(summaries):
        raise StageFailed(f"crawl failed for {len(failed)} of {len(summaries)} source(s):\n{detail}")
    get_run_logger().warning("going on without %d failed source(s): %s", len(failed), detail)


def _call(task: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a task now and return its value (a task may end in a named state, e.g. Cached, carrying the value)."""
    return task(*args, return_state=True, **kwargs).result()


def run_clean(config: PipelineConfig) -> dict[str, Any]:
    return _call(clean_task, to_clean_config(config), state_dir=config.state_dir, force=config.clean.force)


def run_train(config: PipelineConfig) -> dict[str, Any]:
    return _call(train_task, to_train_config(config), nproc=config.train.nproc)


def run_evaluate(config: PipelineConfig, run: Path) -> dict[str, Any]:
    return _call(evaluate_task, to_eval_config(config, run))


def run_curation(config: PipelineConfig, run: Path) -> dict[str, Any]:
    """score (round one's model) -> curate -> train round two on the curated version -> evaluate it on the same
    val pairs as round one (<data_dir>/clean's)."""
    scores = _call(score_task, to_score_config(config, run))
    curated = _call(curate_task, to_curate_config(config, Path(scores["scores"])))
    second = _call(train_task.with_options(task_run_name="train round 2"), to_train_config(config, round_two=True),
                   nproc=config.train.nproc)
    result = {"score": scores, "curate": curated, "train": second}
    if config.evaluate.enabled:
        result["evaluate"] = _call(evaluate_task.with_options(task_run_name="evaluate round 2"),
                                   to_eval_config(config, Path(second["run"])))
    return result


def validate_enabled(config: PipelineConfig) -> None:
    """Build every enabled stage's config up front: a bad field fails the run before any work is done."""
    if config.crawl.enabled:
        to_crawl_config(config)
    if config.clean.enabled:
        to_clean_config(config)
    if config.train.enabled:
        to_train_config(config)
    if config.evaluate.enabled:
        to_eval_config(config, config.runs_dir / config.train.run_name)
    if config.curate.enabled:
        to_score_config(config, config.runs_dir / config.train.run_name)
        to_curate_config(config)
        to_train_config(config, round_two=True)


@flow(name="crawl-clean-train", task_runner=ThreadPoolTaskRunner(max_workers=_RUNNER_THREADS))
def crawl_clean_train(config: PipelineConfig = PipelineConfig()) -> dict[str, Any]:  # noqa: B008 - pydantic default
    """Crawl every source, clean into the dataset, train on it, evaluate; each stage can be switched off."""
    log = get_run_logger()
    validate_enabled(config)
    result: dict[str, Any] = {"data_dir": str(config.data_dir), "runs_dir": str(config.runs_dir)}
    if config.crawl.enabled:
        result["crawl"] = run_crawl(config)
    if config.clean.enabled:
        result["clean"] = run_clean(config)
    run = config.runs_dir / config.train.run_name
    if config.train.enabled:
        result["train"] = run_train(config)
        run = Path(result["train"]["run"])
    if config.evaluate.enabled:
        result["evaluate"] = run_evaluate(config, run)
    if config.curate.enabled:
        result["curate"] = run_curation(config, run)
        if "evaluate" in result and "evaluate" in result["curate"]:
            artifacts.publish_rounds(result["evaluate"]["result"], result["curate"]["evaluate"]["result"])
    log.info("pipeline finished: %s", ", ".join(k for k in ("crawl", "clean", "train", "evaluate", "curate")
                                                 if k in result))
    return result


@flow(name="crawl", task_runner=ThreadPoolTaskRunner(max_workers=_RUNNER_THREADS))
def crawl_flow(config: PipelineConfig = PipelineConfig()) -> list[dict[str, Any]]:  # noqa: B008
    """Only the crawl stage (whatever `crawl.enabled` says)."""
    return run_crawl(config)


@flow(name="clean")
def clean_flow(config: PipelineConfig = PipelineConfig()) -> dict[str, Any]:  # noqa: B008
    """Only the clean stage: RAW files of <data_dir>/raw -> the dataset <data_dir>/clean (incremental)."""
    return run_clean(config)


@flow(name="train")
def train_flow(config: PipelineConfig = PipelineConfig()) -> dict[str, Any]:  # noqa: B008
    """Train on <data_dir>/clean (continuing the run when asked), then evaluate when `evaluate.enabled`."""
    result = {"train": run_train(config)}
    if config.evaluate.enabled:
        result["evaluate"] = run_evaluate(config, Path(result["train"]["run"]))
    return result


FLOWS = {"crawl-clean-train": crawl_clean_train, "crawl": crawl_flow, "clean": clean_flow, "train": train_flow}
