"""The caption tokenizer: BPE trained on the training captions, saved with the run (masking: masking.py).

Training it on our own captions keeps the run self-contained: nothing is downloaded, and the vocabulary fits the
data (a web-caption vocabulary wastes most of a small model's embedding table).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # loader workers fork; the Rust pool must not be live

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers  # noqa: E402

SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
PAD, UNK, CLS, SEP, MASK = range(len(SPECIALS))
TOKENIZER_NAME = "tokenizer.json"


def train_tokenizer(captions: list[str], *, vocab_size: int, max_len: int) -> Tokenizer:
    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.BPEDecoder()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=list(SPECIALS),
                                  show_progress=False)
    tok.train_from_iterator(captions, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", CLS),
                                                                                                ("[SEP]", SEP)])
    return configure(tok, max_len)


def configure(tok: Tokenizer, max_len: int) -> Tokenizer:
    tok.enable_truncation(max_length=max_len)
    tok.enable_padding(pad_id=PAD, pad_token="[PAD]", length=max_len)
    return tok


def load_tokenizer(path: str | Path, *, max_len: int) -> Tokenizer:
    path = Path(path)
    if path.is_dir():
        path = path / TOKENIZER_NAME
    return configure(Tokenizer.from_file(str(path)), max_len)


def encode(tok: Tokenizer, captions: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """-> (ids [B, L] int64, valid [B, L] bool), padded to the tokenizer's fixed length."""
    return to_arrays(tok.encode_batch(captions))


def to_arrays(encodings: list) -> tuple[np.ndarray, np.ndarray]:
    """Encodings of one batch -> (ids, valid); the encodings themselves also carry word ids and offsets."""
    ids = np.array([e.ids for e in encodings], dtype=np.int64).reshape(len(encodings), -1)
    valid = np.array([e.attention_mask for e in encodings], dtype=bool).reshape(len(encodings), -1)
    return ids, valid
