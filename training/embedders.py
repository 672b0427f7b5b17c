"""The two kinds of model `mmpipe score` can embed with: one of our training runs, or an open_clip model on disk.

Each embedder splits its work in two, so decoding runs in loader processes and only the model runs in the main
one: ``prepare(images, captions)`` (CPU: decode, resize, tokenize; returns which images decoded and the input
tensors) and ``embed(inputs, device)`` (L2-normalised float32 image embeddings of the decoded images, and text
embeddings of every caption).  ``identity`` is what the scores record about the model (its weights' sha256 and
training step), so scores of an older checkpoint are never mistaken for this one's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from data_schemas import file_sha256
from training.config import ConfigError, ScoreConfig
from training.distributed import autocast
from training.tokenizer import to_arrays
from training.transforms import decode, prepare


class RunEmbedder:
    """A run of `mmpipe train` (either preset): the same centre crop and tokenizer as its evaluation."""

    def __init__(self, run: Path, device: torch.device, precision: str):
        from training.checkpoint import run_weights
        from training.evaluate import load_run_model

        run = Path(run)
        self.model, cfg, self.tok = load_run_model(run, device)
        weights, step = run_weights(run)
        self.image_size, self.precision = cfg.image_size, precision
        self.identity = {"kind": "mmpipe", "run": str(run.resolve()), "preset": cfg.preset, "step": step,
                         "weights_sha256": file_sha256(weights)}

    def prepare(self, images: list[bytes], captions: list[str]) -> tuple[np.ndarray, dict[str, torch.Tensor]]:
        arrays = [prepare(data, caption, size=self.image_size, rng=None) for data, caption in zip(images, captions,
                                                                                               strict=True)]
        ok = np.array([a is not None for a in arrays], dtype=bool)
        ids, valid = to_arrays(self.tok.encode_batch(captions))
        inputs = {"ids": torch.from_numpy(ids), "valid": torch.from_numpy(valid)}
        if ok.any():
            stacked = np.stack([a for a in arrays if a is not None])
            inputs["image"] = torch.from_numpy(stacked).permute(0, 3, 1, 2).contiguous()
        return ok, inputs

    @torch.no_grad()
    def embed(self, inputs: dict[str, torch.Tensor], device: torch.device) -> tuple[np.ndarray | None, np.ndarray]:
        with autocast(device, self.precision):
            txt = self.model.embed_text(inputs["ids"].to(device), inputs["valid"].to(device))
            img = self.model.embed_image(inputs["image"].to(device)) if "image" in inputs else None
        return _np(img), _np(txt)


class OpenClipEmbedder:
    """An open_clip model built from its config (a name open_clip knows, or a JSON file registered here) with
    weights from a local file; its own preprocessing (resize, centre crop, normalise) and tokenizer."""

    def __init__(self, model: str, pretrained: Path, device: torch.device, precision: str):
        from training.openclip_compat import import_open_clip

        open_clip = import_open_clip()
        pretrained = Path(pretrained)
        if not pretrained.is_file():
            raise FileNotFoundError(f"{pretrained}: no weights file there (mmpipe never downloads weights; "
                                    "pass the path of a checkpoint you have, .safetensors / .pt / .bin)")
        name = _register_config(open_clip, model)
        if name.startswith(("hf-hub:", "local-dir:")) or name not in open_clip.list_models():
            raise ConfigError(f"--open-clip {model}: not a model config open_clip knows; pass one of its names "
                              "(`python -c 'import open_clip; print(open_clip.list_models())'`) or a JSON config")
        self.model, _, self.preprocess = open_clip.create_model_and_transforms(name, pretrained=str(pretrained),
                                                                               device=device)
        self.model.eval()
        self.tokenizer = open_clip.get_tokenizer(name)
        self.size = _image_size(self.preprocess)
        self.precision = precision
        self.identity = {"kind": "open_clip", "model": name, "pretrained": str(pretrained.resolve()),
                         "step": None, "weights_sha256": file_sha256(pretrained)}

    def prepare(self, images: list[bytes], captions: list[str]) -> tuple[np.ndarray, dict[str, torch.Tensor]]:
        decoded = [decode(data, min_side=self.size) for data in images]
        ok = np.array([img is not None for img in decoded], dtype=bool)
        inputs = {"text": self.tokenizer(captions)}
        if ok.any():
            inputs["image"] = torch.stack([self.preprocess(img) for img in decoded if img is not None])
        return ok, inputs

    @torch.no_grad()
    def embed(self, inputs: dict[str, torch.Tensor], device: torch.device) -> tuple[np.ndarray | None, np.ndarray]:
        with autocast(device, self.precision):
            txt = self.model.encode_text(inputs["text"].to(device), normalize=True)
            img = self.model.encode_image(inputs["image"].to(device), normalize=True) if "image" in inputs else None
        return _np(img), _np(txt)


def _register_config(open_clip: Any, model: str) -> str:
    """A ``*.json`` model config is added to open_clip's registry under its file name; a name is returned as is."""
    path = Path(model)
    if path.suffix != ".json":
        return model
    if not path.is_file():
        raise FileNotFoundError(f"--open-clip {model}: no such model config file")
    try:
        cfg = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--open-clip {model}: not valid JSON ({exc})") from exc
    if not isinstance(cfg, dict) or not {"embed_dim", "vision_cfg", "text_cfg"} <= set(cfg):
        raise ConfigError(f"--open-clip {model}: an open_clip model config needs embed_dim, vision_cfg, text_cfg")
    open_clip.add_model_config(path)
    return path.stem


def _image_size(preprocess: Any) -> int:
    for t in getattr(preprocess, "transforms", []):
        size = getattr(t, "size", None)
        if size:
            return int(size if isinstance(size, int) else max(size))
    return 224


def _np(t: torch.Tensor | None) -> np.ndarray | None:
    if t is None:
        return None
    return torch.nn.functional.normalize(t.float(), dim=-1).cpu().numpy()


def build_embedder(config: ScoreConfig, device: torch.device) -> RunEmbedder | OpenClipEmbedder:
    if config.run is not None:
        return RunEmbedder(config.run, device, config.precision)
    return OpenClipEmbedder(str(config.open_clip), Path(str(config.pretrained)), device, config.precision)
