"""`PipelineConfig`: the one typed parameter of every flow, rendered by the Prefect UI as a form.

It holds only what orchestration needs (where data lives, which stages run, retries, cache switches) plus the most
used knobs of each stage; any other stage field goes in a section's ``options`` mapping and is checked against the
stage's own dataclass when the flow converts the section (``to_crawl_config`` ...), so the stages stay the single
source of truth for their defaults and validation.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from crawlers.config import SourceConfig


class FlowConfigError(ValueError):
    """The pipeline configuration is invalid; the message names the file and the field."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Run this stage; switch off to reuse what an earlier run wrote.")
    options: dict[str, Any] = Field(default_factory=dict,
                                    description="Any other field of the stage's config, by name (checked on use; "
                                                "crawl settings the safety policy protects are refused).")


def renamed_keys(data: Any, renames: dict[str, str], *, section: str) -> Any:
    """A section given with a key's old name: the value under the new name, and a warning naming it (so existing
    configs keep working while they are updated)."""
    if not isinstance(data, dict):
        return data
    data = dict(data)
    for old, new in renames.items():
        if old in data:
            warnings.warn(f"{section}.{old} is deprecated; use {section}.{new}", FutureWarning, stacklevel=2)
            value = data.pop(old)
            data.setdefault(new, value)
    return data


class CrawlSection(_Section):
    config_file: Path | None = Field(None, description="A crawl YAML (`mmpipe crawl --config`); its sources and "
                                                       "settings are used, then the fields below override them.")
    sources: list[SourceConfig] = Field(default_factory=list, description="Sources to crawl (added to config_file's).")
    only: list[str] = Field(default_factory=list, description="Crawl only these source names (default: all).")
    allow_private: bool | None = Field(None, description="Allow loopback/private addresses (demo and tests only; "
                                                         "logged; default: config_file's, else off).")
    recrawl: bool = Field(False, description="Crawl every source again even if a recent crawl is reusable.")
    fresh_hours: float = Field(20.0, ge=0, description="A source crawled with identical settings less than this "
                                                       "many hours ago is not crawled again (0: always crawl).")
    retries: int = Field(2, ge=0, description="Retries of a failed source process.")
    retry_delay_s: float = Field(30.0, ge=0, description="Seconds between retries.")
    parallel_sources: int | None = Field(None, ge=1, description="Source processes running at once (default: "
                                                                 "config_file's, else the crawl stage's).")
    require_all: bool = Field(False, description="Fail the flow when any source fails (default: go on with the "
                                                 "sources that succeeded, and report the failures).")

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        return renamed_keys(data, {"parallel": "parallel_sources"}, section="crawl")


class CleanSection(_Section):
    force: bool = Field(False, description="Clean even when the RAW inputs and parameters are unchanged.")
    scheduler: str | None = Field(None, description="Address of your running Dask scheduler, tcp://HOST:PORT or "
                                                    "tls://HOST:PORT (default: a LocalCluster).")
    n_workers: int | None = Field(None, ge=1, description="LocalCluster worker processes (default: one per core).")
    langs: list[str] | None = Field(None, description="ISO 639-1 caption languages to keep (default: all).")
    roles: list[Literal["lead", "body", "teaser"]] | None = Field(
        None, description="RAW roles to keep, e.g. [lead, body] (default: all; rows without a role always pass).")
    image_size: int | None = Field(None, ge=16, description="Stored image size in pixels (default: the stage's).")
    val_fraction: float | None = Field(None, ge=0, le=1, description="Share of duplicate clusters in `val`.")
    write_rejected: bool | None = Field(None, description="Also write the dropped rows, with their reason "
                                                          "(default: the stage's, off).")
    rebuild: bool | None = Field(None, description="Rebuild the whole dataset from its RAW inputs: needed to apply "
                                                   "a changed filter, size, dedup or split parameter to the rows "
                                                   "already there (a run that changes one refuses without it).")
    strict: bool | None = Field(None, description="Fail on the first unreadable RAW file instead of skipping it "
                                                  "(default: the stage's, off).")


class TrainSection(_Section):
    preset: Literal["tiny", "base", "seed"] | None = Field(None, description="Model/optimiser preset (default: "
                                                                              "the stage's, tiny).")
    steps: int | None = Field(None, ge=1, description="Optimiser steps in total (default: the preset's).")
    steps_per_run: int | None = Field(None, ge=1, description="Scheduled training: each run trains this many steps "
                                                              "past the latest checkpoint (instead of `steps`).")
    run_name: str = Field("main", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
                          description="The run directory under runs_dir; one name = one model that keeps learning.")
    resume: bool = Field(True, description="Continue from the run's latest checkpoint when there is one.")
    nproc: int = Field(1, ge=1, description="Processes (GPUs) on this machine; >1 launches torchrun.")
    device: Literal["auto", "cpu", "cuda"] | None = Field(None, description="auto: cuda when available, else cpu "
                                                                            "(default: the stage's, auto).")


class EvaluateSection(_Section):
    baseline: bool | None = Field(None, description="Also train and score the `seed` baseline model (the gap to "
                                                    "beat; default: the stage's, off).")


class CurateSection(_Section):
    enabled: bool = Field(False, description="After training and evaluating: score every row with the run's model, "
                                             "curate the dataset with the scores, train round 2 on the curated "
                                             "version and evaluate it on the same val pairs.")
    keep_top: float | None = Field(None, gt=0, le=1, description="Keep this fraction of the train rows with the "
                                                                 "best alignment (default: the stage's).")
    min_alignment: float | None = Field(None, ge=-1, le=1, description="Also drop rows below this alignment.")
    semantic: bool = Field(True, description="Semantic dedup (SemDeDup) on the image embeddings.")
    semantic_threshold: float | None = Field(None, ge=-1, le=1, description="Image-embedding cosine above which a "
                                                                            "less aligned row is a duplicate.")
    run_name: str = Field("curated", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
                          description="The round-2 run directory under runs_dir (same preset and steps).")
    score_batch_size: int | None = Field(None, ge=1, description="Rows per forward pass when scoring.")


class PipelineConfig(BaseModel):
    """Everything one run of the pipeline needs; each stage can be switched off."""

    model_config = ConfigDict(extra="forbid")

    data_dir: Path = Field(Path("data"), description="RAW files go to its raw/ folder, the dataset to its "
                                                     "clean/ folder.")
    runs_dir: Path = Field(Path("runs"), description="Training runs (checkpoints, metrics, evaluation).")
    crawl: CrawlSection = Field(default_factory=CrawlSection)
    clean: CleanSection = Field(default_factory=CleanSection)
    train: TrainSection = Field(default_factory=TrainSection)
    evaluate: EvaluateSection = Field(default_factory=EvaluateSection)
    curate: CurateSection = Field(default_factory=CurateSection)

    # --- locations -------------------------------------------------------------------------------------------
    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "raw"

    @property
    def clean_dir(self) -> Path:
        return self.data_dir / "clean"

    @property
    def curated_dir(self) -> Path:
        """The curated version of the dataset (`curate` section); its manifest names <data_dir>/clean."""
        return self.data_dir / "curated"

    @property
    def state_dir(self) -> Path:
        """Where the flows keep their own bookkeeping (crawl reuse, clean cache); never read by a stage."""
        return self.data_dir / ".flow"

    def resolved(self, base: Path | None = None) -> PipelineConfig:
        """Absolute paths, so a deployment runs the same from any working directory."""
        base = (base or Path.cwd()).resolve()
        data = self.model_copy(deep=True)
        data.data_dir = (base / self.data_dir).resolve()
        data.runs_dir = (base / self.runs_dir).resolve()
        if data.crawl.config_file is not None:
            data.crawl.config_file = (base / data.crawl.config_file).resolve()
        return data

    # --- loading ---------------------------------------------------------------------------------------------
    @classmethod
    def from_yaml(cls, path: str | Path) -> PipelineConfig:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError as exc:
            raise FlowConfigError(f"{path}: config file not found") from exc
        except yaml.YAMLError as exc:
            raise FlowConfigError(f"{path}: not valid YAML ({exc})") from exc
        if not isinstance(data, dict):
            raise FlowConfigError(f"{path}: expected a mapping with data_dir, crawl, clean, train ... at the top")
        try:
            return cls.model_validate(data)  # relative paths are relative to the working directory, as elsewhere
        except ValidationError as exc:
            raise FlowConfigError(f"{path}: {_pretty(exc)}") from exc


def _pretty(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())


def stage_kwargs(cls: type, section: _Section, fields: dict[str, Any], *, stage: str) -> dict[str, Any]:
    """Merge a section's typed fields and ``options`` into keyword arguments for the stage dataclass ``cls``.

    ``None`` means "the stage's default", so it is left out; an unknown option is an error naming its section.
    """
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(section.options) - known)
    if unknown:
        raise FlowConfigError(f"{stage}.options: unknown field(s) {', '.join(unknown)}; "
                              f"{cls.__name__} has: {', '.join(sorted(known))}")
    merged = {k: v for k, v in fields.items() if v is not None and k in known}
    merged.update(section.options)
    return merged
