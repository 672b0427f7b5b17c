"""Typed configs for the training and evaluation stages, and the model presets.

A preset fills every field left as ``None``; a YAML file or CLI flag overrides the preset.  The resolved config is
saved as ``config.json`` in the run directory so ``mmpipe eval`` and ``--resume`` rebuild exactly the same model.

Presets:
  * ``tiny``  - CPU tests: 64-px images, ViT patch 16, 2 vision + 2 text layers of width 128 (1.25 M parameters
                with a 600-token vocabulary).
  * ``base``  - GPU: 224-px images, ViT/16 with 8 layers of width 512, 6 text layers of width 512 with
                cross-attention (68 M parameters with the 16k vocabulary; 52 M on the small synthetic vocabulary).
  * ``seed``  - the original linear design, kept as the baseline (see ``training/seed_model.py``; 0.5 M parameters
                with a 600-token vocabulary).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from data_schemas import storage

PRESET_NAMES = ("tiny", "base", "seed")
BASELINE_DIR = "baseline"  # <run>/baseline: the `seed` preset trained like the run (training.train.train_baseline)


class ConfigError(ValueError):
    """A config file or flag is invalid; the message names the field."""


@dataclass(frozen=True)
class ModelSpec:
    kind: str = "mm"  # "mm" (ViT + text transformer, MLM + contrastive) or "seed"
    patch: int = 8
    vision_width: int = 128
    vision_depth: int = 2
    text_width: int = 128
    text_depth: int = 2
    heads: int = 4
    mlp_ratio: float = 4.0
    embed_dim: int = 128
    seed_pixels: int = 16  # seed: images are average-pooled to seed_pixels x seed_pixels before the linear encoder
    seed_width: int = 256


_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(model=ModelSpec(patch=16), image_size=64, max_text_len=24, vocab_size=600, batch_size=32, lr=2e-3,
                 warmup=20, steps=300, mask_prob=0.3, weight_decay=0.01),
    "base": dict(model=ModelSpec(patch=16, vision_width=512, vision_depth=8, text_width=512, text_depth=6, heads=8,
                                 embed_dim=512),
                 image_size=224, max_text_len=64, vocab_size=16000, batch_size=256, lr=5e-4, warmup=500, steps=20000,
                 mask_prob=0.2, weight_decay=0.05),
    "seed": dict(model=ModelSpec(kind="seed"), image_size=64, max_text_len=24, vocab_size=600, batch_size=32,
                 lr=2e-3, warmup=20, steps=300, mask_prob=0.3, weight_decay=0.0),
}


@dataclass(frozen=True)
class TrainConfig:
    data: Path
    out: Path
    preset: str = "tiny"
    steps: int | None = None  # optimizer steps; wins over epochs
    epochs: float | None = None
    batch_size: int | None = None  # per rank, per micro-step
    lr: float | None = None
    warmup: int | None = None
    weight_decay: float | None = None
    grad_accum: int = 1
    clip: float = 1.0
    precision: str = "auto"  # auto (bf16 on CUDA, fp32 on CPU) | bf16 | fp32
    compile: bool = False
    device: str = "auto"  # auto | cpu | cuda
    ckpt_every: int = 100
    keep_last: int = 3
    resume: str | None = None  # None | "latest" | path of a checkpoint directory
    seed: int = 0
    num_workers: int = 2
    image_size: int | None = None
    max_text_len: int | None = None
    vocab_size: int | None = None
    mask_prob: float | None = None
    # MLM targets (training.masking): whole words, each as likely as any other (no vocabulary), unless
    # mask_focus_words names a text file of words, which are then masked mask_focus_weight times as often, at the
    # same mask rate.  Evaluation masks uniformly, so policies stay comparable.  mask_whole_words false without
    # focus words: plain BERT token masking.
    mask_whole_words: bool = True
    mask_focus_weight: float = 4.0
    mask_focus_words: str | None = None
    image_drop: float = 0.1  # fraction of MLM samples trained without the image, so "no image" is in-distribution
    clip_weight: float = 1.0
    crop_scale: tuple[float, float] = (0.6, 1.0)
    shuffle_buffer: int = 1000
    log_every: int = 10
    eval_at_end: bool = True
    eval_batch_size: int = 64
    progress: bool = True
    plot: bool = True  # metrics.png at the end (matplotlib); off only to save seconds in tests
    model: ModelSpec | None = None
    debug_samples: bool = False  # write samples-rank<R>.jsonl: the keys of every micro-batch, for order tests

    def __post_init__(self) -> None:
        if self.preset not in PRESET_NAMES:
            raise ConfigError(f"preset '{self.preset}' is unknown; choose one of {', '.join(PRESET_NAMES)}")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ConfigError(f"precision '{self.precision}' must be auto, bf16 or fp32")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"device '{self.device}' must be auto, cpu or cuda")
        for name in ("grad_accum", "ckpt_every", "keep_last", "log_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.num_workers < 0:
            raise ConfigError("num_workers must be >= 0")
        if not self.mask_focus_weight > 0:
            raise ConfigError(f"mask_focus_weight must be > 0, got {self.mask_focus_weight}")

    def resolved(self) -> TrainConfig:
        """A copy with every ``None`` field filled from the preset."""
        preset = _PRESETS[self.preset]
        filled = {k: v for k, v in preset.items() if k != "steps" and getattr(self, k) is None}
        out = replace(self, data=storage.location(self.data), out=storage.location(self.out),
                      crop_scale=tuple(self.crop_scale), **filled)
        if out.steps is None and out.epochs is None:
            out = replace(out, steps=preset["steps"])
        return out

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["data"], data["out"] = str(self.data), str(self.out)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        if data.get("debug_pause_at_step") is None:  # a removed test hook (now data_schemas.faults): in the
            data = {k: v for k, v in data.items() if k != "debug_pause_at_step"}  # config.json of older runs
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown training config field(s): {', '.join(unknown)}; "
                              f"known: {', '.join(sorted(names))}")
        data = dict(data)
        for key in ("data", "out"):
            if key not in data or data[key] is None:
                raise ConfigError(f"'{key}' is required")
            data[key] = storage.location(data[key])
        if isinstance(data.get("model"), dict):
            data["model"] = _model_spec(data["model"], data.get("preset", "tiny"))
        if data.get("crop_scale") is not None:
            data["crop_scale"] = tuple(data["crop_scale"])
        return cls(**data)

    @classmethod
    def from_yaml(cls, path: str | Path | None, **overrides: Any) -> TrainConfig:
        """Load a YAML file (or nothing) and apply overrides; ``None`` overrides are ignored."""
        data: dict[str, Any] = {}
        if path is not None:
            import yaml

            path = Path(path)
            try:
                data = yaml.safe_load(path.read_text()) or {}
            except (OSError, yaml.YAMLError) as exc:
                raise ConfigError(f"{path}: cannot read the training config ({exc})") from exc
            if not isinstance(data, dict):
                raise ConfigError(f"{path}: expected a mapping of config fields at the top level")
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(data)

    def write_json(self, path: Path) -> Path:
        from data_schemas import atomic_write_json

        return atomic_write_json(path, self.to_dict())

    @classmethod
    def read_json(cls, path: Path) -> TrainConfig:
        return cls.from_dict(json.loads(Path(path).read_text()))


def _model_spec(data: dict[str, Any], preset: str) -> ModelSpec:
    """Overrides in YAML may name only the fields they change: the rest come from the preset's spec."""
    base = _PRESETS.get(preset, _PRESETS["tiny"])["model"]
    known = {f.name for f in fields(ModelSpec)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"unknown model field(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return replace(base, **data)


@dataclass(frozen=True)
class EvalConfig:
    run: Path
    data: Path | None = None  # defaults to the data the run was trained on
    batch_size: int = 64
    baseline: bool = False  # also evaluate the run's `seed` baseline (<run>/baseline; train_baseline makes it)
    baseline_run: Path | None = None
    max_samples: int = 5000  # retrieval is O(N^2); cap the val set
    bootstrap: int = 1000
    num_workers: int = 0
    device: str = "auto"
    seed: int = 0


@dataclass(frozen=True)
class ScoreConfig:
    """`mmpipe score`: embeddings and image-text alignment for every row of a dataset, from one model.

    The model is a training run of ours (``run``) or an open_clip model whose weights are on disk (``open_clip``:
    a model name open_clip knows, or a JSON model config file; ``pretrained``: the weights file).  Nothing is
    downloaded.  Output: ``<data>/_scores/<name>/`` (see data_schemas.layout).
    """

    data: Path
    run: Path | None = None
    open_clip: str | None = None
    pretrained: Path | None = None
    name: str | None = None  # default: the run directory's name, or "open_clip-<model>"
    batch_size: int = 64
    num_workers: int = 1  # image-decoding loader processes (0: decode in the main process)
    device: str = "auto"
    precision: str = "auto"  # as TrainConfig: bf16 autocast on CUDA, fp32 on CPU
    progress: bool = True

    def __post_init__(self) -> None:
        if (self.run is None) == (self.open_clip is None):
            raise ConfigError("score: give exactly one model: --run RUN (a training run) or --open-clip MODEL")
        if self.open_clip is not None and self.pretrained is None:
            raise ConfigError("score: --open-clip needs --pretrained PATH (weights on disk; nothing is downloaded)")
        if self.open_clip is None and self.pretrained is not None:
            raise ConfigError("score: --pretrained goes with --open-clip; a training run brings its own weights")
        if self.batch_size < 1 or self.num_workers < 0:
            raise ConfigError("score: batch_size must be >= 1 and num_workers >= 0")
        if self.device not in ("auto", "cpu", "cuda") or self.precision not in ("auto", "bf16", "fp32"):
            raise ConfigError(f"score: device '{self.device}' / precision '{self.precision}' is not valid")
        if self.name is not None and (not self.name or "/" in self.name or self.name.startswith(".")):
            raise ConfigError(f"score: name '{self.name}' must be a plain directory name")

    @property
    def run_id(self) -> str:
        if self.name:
            return self.name
        if self.run is not None:
            return Path(self.run).resolve().name
        return "open_clip-" + Path(str(self.open_clip)).name.removesuffix(".json")
