"""`PipelineConfig` section -> the stage's own dataclass config.  The only place the two vocabularies meet."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from flows.config import FlowConfigError, PipelineConfig, stage_kwargs
from flows.state import digest

if TYPE_CHECKING:  # the stages are imported inside each conversion, so a flow loads only the stages it runs
    from crawlers.config import CrawlConfig
    from pipeline.config import CleanConfig, CurateConfig
    from training.config import EvalConfig, ScoreConfig, TrainConfig


def to_crawl_config(config: PipelineConfig) -> CrawlConfig:
    from crawlers import policy
    from crawlers.config import ConfigError, CrawlConfig

    section = config.crawl
    refused = policy.flow_option_problems(section.options)  # run parameters may not reach past the policy
    if refused:
        raise FlowConfigError("crawl: refused by the crawl's safety policy: " + "; ".join(refused))
    try:
        base = CrawlConfig.from_yaml(section.config_file).to_dict() if section.config_file else {"sources": []}
        base.pop("out", None)
        base.pop("state_dir", None)
        sources = list(base.pop("sources")) + [dataclasses.asdict(s) for s in section.sources]
        fields = {"allow_private": section.allow_private or base.get("allow_private") or None,
                  "parallel_sources": section.parallel_sources,
                  "blocklist": base.get("blocklist") or config.clean_dir}
        kwargs = stage_kwargs(CrawlConfig, section, fields, stage="crawl")
        crawl = CrawlConfig.from_dict({**base, **kwargs, "sources": sources, "out": config.raw_dir})
        crawl = crawl.select(section.only)
    except ConfigError as exc:
        raise FlowConfigError(f"crawl: {exc}") from exc
    if not crawl.sources:
        raise FlowConfigError("crawl: no sources configured: set crawl.sources or crawl.config_file, "
                              "or switch the crawl off (crawl.enabled: false)")
    return crawl


def crawl_key(crawl: CrawlConfig, source: str) -> str:
    """Everything that changes what a source's crawl would fetch or write, and nothing about where logs go."""
    settings = crawl.to_dict()
    for volatile in ("sources", "state_dir", "log_level", "parallel_sources"):
        settings.pop(volatile, None)
    return digest({"source": dataclasses.asdict(crawl.source(source)), "settings": settings})


def to_clean_config(config: PipelineConfig) -> CleanConfig:
    from pipeline.config import CleanConfig

    section = config.clean
    fields = {k: getattr(section, k) for k in ("scheduler", "n_workers", "langs", "roles", "image_size",
                                               "val_fraction", "write_rejected", "rebuild", "strict")}
    kwargs = stage_kwargs(CleanConfig, section, fields, stage="clean")
    try:
        return CleanConfig(raw=config.raw_dir, out=config.clean_dir, **kwargs)
    except (TypeError, ValueError) as exc:
        raise FlowConfigError(f"clean: {exc}") from exc


def train_run_dir(config: PipelineConfig, *, round_two: bool = False) -> Path:
    return config.runs_dir / (config.curate.run_name if round_two else config.train.run_name)


def to_train_config(config: PipelineConfig, *, round_two: bool = False) -> TrainConfig:
    """Round one trains on <data_dir>/clean; round two (the `curate` section) on the curated version."""
    from training.config import ConfigError, TrainConfig

    section = config.train
    run = train_run_dir(config, round_two=round_two)
    # The flow evaluates in its own task (visible in the UI, switchable), so the stage's built-in one is off.
    steps = section.steps
    if section.steps_per_run:
        done = _latest_step(run) if section.resume else 0
        steps = done + section.steps_per_run
    fields = {"preset": section.preset, "steps": steps, "device": section.device,
              "resume": "latest" if section.resume else None, "eval_at_end": False}
    kwargs = stage_kwargs(TrainConfig, section, fields, stage="train")
    try:
        data = config.curated_dir if round_two else config.clean_dir
        return TrainConfig.from_dict({**kwargs, "data": str(data), "out": str(run)})
    except (ConfigError, TypeError) as exc:
        raise FlowConfigError(f"train: {exc}") from exc


def _latest_step(run: Path) -> int:
    """The step of the run's newest complete checkpoint (0 without one), read from its meta.json."""
    import json

    from training.checkpoint import latest_checkpoint

    ckpt = latest_checkpoint(run)
    return int(json.loads((ckpt / "meta.json").read_text())["step"]) if ckpt else 0


def to_eval_config(config: PipelineConfig, run: Path) -> EvalConfig:
    from training.config import EvalConfig

    section = config.evaluate
    fields = {"baseline": section.baseline, "device": config.train.device}
    kwargs = stage_kwargs(EvalConfig, section, fields, stage="evaluate")
    try:
        return EvalConfig(run=Path(run), data=config.clean_dir, **kwargs)
    except (TypeError, ValueError) as exc:
        raise FlowConfigError(f"evaluate: {exc}") from exc


def to_score_config(config: PipelineConfig, run: Path) -> ScoreConfig:
    """Score <data_dir>/clean with round one's model: <data_dir>/clean/_scores/<run name>/."""
    from training.config import ConfigError, ScoreConfig

    fields = {"batch_size": config.curate.score_batch_size, "device": config.train.device}
    try:
        return ScoreConfig(data=config.clean_dir, run=Path(run), progress=False,
                           **{k: v for k, v in fields.items() if v is not None})
    except ConfigError as exc:
        raise FlowConfigError(f"curate: {exc}") from exc


def to_curate_config(config: PipelineConfig, scores: Path | None = None) -> CurateConfig:
    from pipeline.config import CurateConfig

    section = config.curate
    fields = {"keep_top": section.keep_top, "min_alignment": section.min_alignment,
              "semantic_threshold": section.semantic_threshold}
    kwargs = stage_kwargs(CurateConfig, section, fields, stage="curate")
    if not section.semantic:
        kwargs["semantic_threshold"] = None
    try:
        return CurateConfig(data=config.clean_dir, out=config.curated_dir, scores=scores, progress=False, **kwargs)
    except (TypeError, ValueError) as exc:
        raise FlowConfigError(f"curate: {exc}") from exc
