"""The `seed` preset: the project's original design, kept unchanged as the baseline the real model must beat.

Our reading of the original (documented because the seed was only ever described, never specified):
  * text features  = the caption's bag of tokens: token counts over the vocabulary (special tokens excluded),
                     L2-normalised.  The input bag holds only the *unmasked* tokens of the caption;
  * image features = the image average-pooled to ``seed_pixels`` x ``seed_pixels`` RGB and flattened
                     (3 * 16 * 16 = 768 values), normalised like the main model's pixels;
  * each is encoded by one linear layer to a shared width; the two embeddings are ADDED;
  * a linear decoder reconstructs the text features of the *full* caption; loss = MSE.
There is no nonlinearity anywhere, so it is a linear model of the masked caption and the pixels.

Evaluated with the same metrics where they apply: retrieval uses its two linear embeddings (text embedding of the
full caption's bag vs image embedding); masked-token accuracy ranks the vocabulary by reconstruction minus the
visible bag and counts masked tokens among the top m (m = number of masked tokens); its "loss" under the matched,
mismatched and no-image conditions is the MSE (cross-entropy does not apply to an MSE model).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from training.config import ModelSpec
from training.tokenizer import SPECIALS
from training.transforms import IMAGE_MEAN, IMAGE_STD


class SeedModel(nn.Module):
    def __init__(self, spec: ModelSpec, *, vocab: int):
        super().__init__()
        self.vocab, self.pixels = vocab, spec.seed_pixels
        self.text_enc = nn.Linear(vocab, spec.seed_width)
        self.image_enc = nn.Linear(3 * spec.seed_pixels ** 2, spec.seed_width)
        self.decoder = nn.Linear(spec.seed_width, vocab)

    def text_features(self, ids: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        keep = keep & (ids >= len(SPECIALS))
        bag = torch.zeros(ids.shape[0], self.vocab, device=ids.device)
        bag.scatter_add_(1, ids, keep.float())
        return F.normalize(bag, dim=-1)

    def image_features(self, image: torch.Tensor) -> torch.Tensor:
        x = (image.float() / 255.0 - IMAGE_MEAN) / IMAGE_STD
        return F.adaptive_avg_pool2d(x, self.pixels).flatten(1)

    def embed_text(self, ids, valid):
        return F.normalize(self.text_enc(self.text_features(ids, valid)), dim=-1)

    def embed_image(self, image, tokens=None):
        return F.normalize(self.image_enc(self.image_features(image)), dim=-1)

    def reconstruct(self, ids, valid, labels, image_emb, gate):
        visible = self.text_features(ids, valid & (labels == -100))
        h = self.text_enc(visible) + image_emb * gate.view(-1, 1).to(image_emb.dtype)
        return self.decoder(h), visible

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        image_emb = self.image_enc(self.image_features(batch["image"]))
        recon, _ = self.reconstruct(batch["ids"], batch["valid"], batch["labels"], image_emb, batch["gate"])
        target = self.text_features(batch["ids"], batch["valid"])
        mse = F.mse_loss(recon.float(), target)
        return {"loss": mse, "mse": mse}
