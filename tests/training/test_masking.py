"""MLM masking policies: uniform token masking as before; whole-word masking, vocabulary-free by default; and,
with a focus-word list from the configuration, weighted masking that keeps the mask rate but moves masks onto the
focus words; a word's BPE pieces are never split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.masking import MaskPolicy, mask_tokens, mask_words, read_words, word_layout
from training.tokenizer import MASK, SPECIALS, to_arrays, train_tokenizer

VISUAL = Path(__file__).resolve().parents[2] / "configs" / "mask_focus_words.visual.txt"

CAPTIONS = ["Two red circles above a blue square on a green background, officials said.",
            "Dos rombos morados debajo de dos estrellas amarillas sobre fondo marrón, según el ayuntamiento.",
            "A file picture shows three orange stars in the top left corner on a white background.",
            "Residents said the exhibition opens on Tuesday."]


@pytest.fixture(scope="module")
def tok():
    # a vocabulary too small for whole Spanish words, so several words are split into pieces
    return train_tokenizer(CAPTIONS * 4, vocab_size=120, max_len=40)


def _masked(tok, policy: MaskPolicy, seed: int, *, train: bool = False):
    enc = tok.encode_batch(CAPTIONS)
    ids, valid = to_arrays(enc)
    words, weights = word_layout(enc, CAPTIONS, policy, ids.shape[1])
    inputs, labels = mask_words(ids, valid, np.random.default_rng(seed), words=words, weights=weights,
                                prob=policy.prob, vocab_size=tok.get_vocab_size(), train=train)
    return ids, valid, words, weights, inputs, labels


def test_whole_words_are_masked_together_and_focus_words_get_the_masks(tok):
    policy = MaskPolicy(prob=0.3, focus_weight=4.0, focus_words=read_words(VISUAL))
    focus = masked = content = 0
    split_words = 0
    for seed in range(200):
        ids, valid, words, weights, inputs, labels = _masked(tok, policy, seed)
        chosen = labels != -100
        assert (chosen.sum(axis=1) >= 1).all()  # every caption carries MLM signal
        assert (inputs[chosen] == MASK).all() and (inputs[~chosen] == ids[~chosen]).all()
        for row in range(len(CAPTIONS)):
            for w in set(words[row][words[row] >= 0].tolist()):
                pieces = chosen[row][words[row] == w]
                split_words += len(pieces) > 1
                assert pieces.all() or not pieces.any(), (row, w)
        is_content = valid & (ids >= len(SPECIALS))
        content += is_content.sum()
        masked += chosen.sum()
        focus += (chosen & (weights > 1)).sum()
    assert split_words > 0  # the check above really saw multi-piece words
    share_of_tokens = (weights[is_content] > 1).mean()
    assert 0.25 < masked / content < 0.36  # the rate stays about prob (a little above: the one-word minimum)
    assert focus / masked > share_of_tokens + 0.2  # ... but the masks move onto focus words
    assert (weights[~is_content] == 1).all()


def test_focus_words_are_matched_on_the_whole_word_case_insensitively(tok):
    enc = tok.encode_batch(CAPTIONS)
    ids, _ = to_arrays(enc)
    words, weights = word_layout(enc, CAPTIONS, MaskPolicy(prob=0.3, focus_weight=3.0, focus_words=read_words(VISUAL)),
                                 ids.shape[1])
    heavy = {CAPTIONS[r][slice(*enc[r].word_to_chars(int(words[r, t])))].lower()
             for r, t in zip(*np.nonzero(weights > 1), strict=True)}
    assert {"two", "red", "circles", "above", "blue", "square", "green", "three", "orange", "top", "left"} <= heavy
    assert not heavy & {"officials", "said", "background", "residents", "exhibition", "tuesday", "a", ","}
    assert {"amarillas", "morados"} <= read_words(VISUAL) and not {"focus", "words"} & read_words(VISUAL)  # comments
    # the fourth caption has no focus word: its weights are all 1, and it is still masked
    assert (weights[3] == 1).all()


def test_focus_words_come_only_from_a_file(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("# a comment line\nOfficials\nexhibition tuesday\n")
    policy = MaskPolicy.from_config(prob=0.3, whole_words=True, focus_weight=5.0, focus_words=path)
    assert policy.focus_words == {"officials", "exhibition", "tuesday"}
    assert MaskPolicy.from_config(prob=0.3, whole_words=True, focus_weight=5.0, focus_words=None).focus_words \
        == frozenset()


def test_the_default_objective_knows_no_vocabulary(tok, tmp_path):
    """The presets mask whole words, every word as likely as any other: a colour is masked no more often than the
    news boilerplate around it."""
    from training.config import TrainConfig
    from training.train import mask_policy

    for preset in ("tiny", "base"):
        policy = mask_policy(TrainConfig(data=tmp_path, out=tmp_path / "run", preset=preset).resolved())
        assert policy.whole_words and policy.focus_words == frozenset()
    rate: dict[str, list[int]] = {"red": [0, 0], "officials": [0, 0], "blue": [0, 0], "said": [0, 0]}
    for seed in range(300):
        ids, valid, words, weights, inputs, labels = _masked(tok, policy, seed)
        assert (weights == 1).all()
        enc = tok.encode_batch(CAPTIONS[:1])[0]
        for w in set(words[0][words[0] >= 0].tolist()):
            text = CAPTIONS[0][slice(*enc.word_to_chars(w))].lower()
            if text in rate:
                rate[text][0] += int((labels[0][words[0] == w] != -100).any())
                rate[text][1] += 1
    shares = {k: hit / n for k, (hit, n) in rate.items()}
    assert max(shares.values()) - min(shares.values()) < 0.12, shares


def test_uniform_token_masking_is_unchanged_and_reproducible(tok):
    ids, valid = to_arrays(tok.encode_batch(CAPTIONS))
    a = mask_tokens(ids, valid, np.random.default_rng(5), prob=0.3, vocab_size=tok.get_vocab_size(), train=True)
    b = mask_tokens(ids, valid, np.random.default_rng(5), prob=0.3, vocab_size=tok.get_vocab_size(), train=True)
    assert all((x == y).all() for x, y in zip(a, b, strict=True))
    chosen = a[1] != -100
    assert (chosen <= (valid & (ids >= len(SPECIALS)))).all() and (chosen.sum(axis=1) >= 1).all()
    # in training most chosen tokens become [MASK], the rest a random token or themselves
    assert (a[0][chosen] == MASK).mean() > 0.5


def test_the_policy_comes_from_the_config_and_bad_settings_fail_fast(tmp_path):
    from training.config import ConfigError, TrainConfig
    from training.train import mask_policy

    focused = TrainConfig(data=tmp_path, out=tmp_path / "run", mask_focus_words=str(VISUAL), mask_focus_weight=3.0)
    policy = mask_policy(focused.resolved())
    assert policy.whole_words and policy.focus_weight == 3.0 and policy.focus_words == read_words(VISUAL)
    plain = TrainConfig(data=tmp_path, out=tmp_path / "run", mask_whole_words=False)
    assert mask_policy(plain.resolved()) is None  # plain BERT masking, as before the policies existed
    with pytest.raises(ConfigError, match="mask_focus_weight"):
        TrainConfig(data=tmp_path, out=tmp_path / "run", mask_focus_weight=0)
    missing = TrainConfig(data=tmp_path, out=tmp_path / "run", mask_focus_words=str(tmp_path / "nope.txt"))
    with pytest.raises(ConfigError, match="nope.txt"):
        mask_policy(missing.resolved())
