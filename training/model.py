"""The image-text model: a ViT image encoder and a Transformer text encoder whose layers cross-attend to image tokens.

Two objectives share one text tower (as ALBEF/BLIP do):
  * contrastive (CLIP): the *unmasked* caption goes through the text tower with cross-attention switched off, its
    [CLS] output is projected and matched against the mean-pooled image tokens (symmetric InfoNCE, learned
    temperature).  Negatives are the other samples of the rank's batch.
  * image-conditioned MLM: the *masked* caption goes through the same tower with cross-attention to the image
    tokens; a head predicts the masked tokens.  A per-sample gate (0 for ``image_drop`` of the samples) turns the
    cross-attention off, so "no image" is a condition the model has seen and evaluation can compare against it.
Dropout is not used: runs stay bit-reproducible across kill-and-resume without saving RNG streams.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from training.config import ModelSpec
from training.seed_model import SeedModel
from training.transforms import IMAGE_MEAN, IMAGE_STD


class Attention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(width, width)
        self.kv = nn.Linear(width, 2 * width)
        self.out = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, ctx: torch.Tensor | None = None, mask: torch.Tensor | None = None):
        ctx = x if ctx is None else ctx
        b, n, c = x.shape
        h = self.heads
        q = self.q(x).view(b, n, h, c // h).transpose(1, 2)
        k, v = self.kv(ctx).view(b, ctx.shape[1], 2, h, c // h).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out(y.transpose(1, 2).reshape(b, n, c))


class Block(nn.Module):
    """Pre-LN transformer block; with ``cross`` it also attends to context tokens (scaled by a per-sample gate)."""

    def __init__(self, width: int, heads: int, mlp_ratio: float, *, cross: bool = False):
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(width), Attention(width, heads)
        self.cross = cross
        if cross:
            self.ln_x, self.xattn = nn.LayerNorm(width), Attention(width, heads)
        hidden = int(width * mlp_ratio)
        self.ln2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))

    def forward(self, x, *, mask=None, ctx=None, gate=None):
        x = x + self.attn(self.ln1(x), mask=mask)
        if self.cross and ctx is not None:
            y = self.xattn(self.ln_x(x), ctx)
            x = x + (y if gate is None else y * gate.view(-1, 1, 1).to(y.dtype))
        return x + self.mlp(self.ln2(x))


class VisionTower(nn.Module):
    def __init__(self, spec: ModelSpec, image_size: int):
        super().__init__()
        if image_size % spec.patch:
            raise ValueError(f"image_size {image_size} is not a multiple of the patch size {spec.patch}")
        w = spec.vision_width
        self.patch = nn.Conv2d(3, w, spec.patch, stride=spec.patch)
        self.pos = nn.Parameter(torch.randn(1, (image_size // spec.patch) ** 2, w) * 0.02)
        self.blocks = nn.ModuleList(Block(w, spec.heads, spec.mlp_ratio) for _ in range(spec.vision_depth))
        self.ln = nn.LayerNorm(w)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = (image.float() / 255.0 - IMAGE_MEAN) / IMAGE_STD
        x = self.patch(x.to(self.patch.weight.dtype)).flatten(2).transpose(1, 2) + self.pos
        for blk in self.blocks:
            x = blk(x)
        return self.ln(x)


class TextTower(nn.Module):
    def __init__(self, spec: ModelSpec, vocab: int, max_len: int):
        super().__init__()
        w = spec.text_width
        self.tok = nn.Embedding(vocab, w)
        self.pos = nn.Parameter(torch.randn(1, max_len, w) * 0.02)
        self.blocks = nn.ModuleList(Block(w, spec.heads, spec.mlp_ratio, cross=True) for _ in range(spec.text_depth))
        self.ln = nn.LayerNorm(w)

    def forward(self, ids, valid, *, ctx=None, gate=None):
        x = self.tok(ids) + self.pos[:, : ids.shape[1]]
        mask = valid[:, None, None, :]
        for blk in self.blocks:
            x = blk(x, mask=mask, ctx=ctx, gate=gate)
        return self.ln(x)


class MMModel(nn.Module):
    def __init__(self, spec: ModelSpec, *, vocab: int, image_size: int, max_len: int, clip_weight: float = 1.0):
        super().__init__()
        self.clip_weight = clip_weight
        self.vision = VisionTower(spec, image_size)
        self.text = TextTower(spec, vocab, max_len)
        self.img_to_text = nn.Linear(spec.vision_width, spec.text_width)
        self.img_proj = nn.Linear(spec.vision_width, spec.embed_dim, bias=False)
        self.txt_proj = nn.Linear(spec.text_width, spec.embed_dim, bias=False)
        self.mlm_head = nn.Sequential(nn.Linear(spec.text_width, spec.text_width), nn.GELU(),
                                      nn.LayerNorm(spec.text_width), nn.Linear(spec.text_width, vocab))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.apply(_init)

    def image_tokens(self, image):
        return self.vision(image)

    def embed_image(self, image, tokens=None):
        tokens = self.vision(image) if tokens is None else tokens
        return F.normalize(self.img_proj(tokens.mean(dim=1)), dim=-1)

    def embed_text(self, ids, valid):
        return F.normalize(self.txt_proj(self.text(ids, valid)[:, 0]), dim=-1)

    def mlm_logits(self, mlm_ids, valid, tokens, gate):
        ctx = self.img_to_text(tokens)
        return self.mlm_head(self.text(mlm_ids, valid, ctx=ctx, gate=gate))

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        tokens = self.vision(batch["image"])
        img = self.embed_image(None, tokens)
        txt = self.embed_text(batch["ids"], batch["valid"])
        logits = self.mlm_logits(batch["mlm_ids"], batch["valid"], tokens, batch["gate"])
        mlm = masked_ce(logits, batch["labels"])
        clip = clip_loss(img, txt, self.logit_scale)
        return {"loss": mlm + self.clip_weight * clip, "mlm": mlm, "clip": clip}


def build_model(spec: ModelSpec, *, vocab: int, image_size: int, max_len: int, clip_weight: float = 1.0) -> nn.Module:
    if spec.kind == "seed":
        return SeedModel(spec, vocab=vocab)
    return MMModel(spec, vocab=vocab, image_size=image_size, max_len=max_len, clip_weight=clip_weight)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def masked_ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean CE over masked tokens; 0 (not NaN) when nothing is masked, so padding batches stay finite."""
    ce = F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=-100, reduction="sum")
    return ce / (labels != -100).sum().clamp(min=1)


def clip_loss(img: torch.Tensor, txt: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    scale = logit_scale.clamp(max=math.log(100.0)).exp()
    logits = scale * img.float() @ txt.float().t()
    target = torch.arange(len(img), device=img.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2


def _init(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Embedding):
        nn.init.normal_(m.weight, std=0.02)
