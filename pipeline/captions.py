"""Choose a row's caption among its candidates, clean it and filter it; every rejection returns a drop reason.

The rule shared with the demo site's ground truth: walk the candidates in ``CAPTION_PREFERENCE`` order, clean each
one, and take the first that passes every text filter (language included).  If none passes, the row is dropped
with the reason of the highest-preference candidate that was not empty after cleaning (else ``caption_empty``).
"""

from __future__ import annotations

import array
import os
import re
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from data_schemas import CAPTION_PREFERENCE, reasons
from pipeline.text import normalise_text

if TYPE_CHECKING:
    from pipeline.config import CleanConfig

RANK = {origin: i for i, origin in enumerate(CAPTION_PREFERENCE)}
UNDETERMINED = "und"

_BOILERPLATE = frozenset((
    "image", "photo", "picture", "pic", "pics", "img", "photograph", "photos", "pictures", "images", "thumbnail",
    "thumb", "placeholder", "untitled", "caption", "no caption", "no title", "no description", "no alt text",
    "alt text", "image description", "photo description", "enlarge", "click to enlarge", "click here to enlarge",
    "click to expand", "click to zoom", "tap to enlarge", "enlarge this image", "view larger", "view larger image",
    "view image", "view photo", "open image", "see image", "expand image", "full size image", "default image",
    "featured image", "lead image", "main image", "hero image", "header image", "cover image", "cover photo",
    "image not available", "no image available", "image unavailable", "image coming soon", "photo coming soon",
    "loading", "spacer", "logo", "banner", "advertisement", "ad", "icon", "avatar", "profile picture",
    "profile photo", "media", "gallery", "slideshow", "video", "n a", "na", "none", "null", "undefined", "nan",
    "image placeholder", "photo placeholder", "placeholder image", "placeholder text", "insert caption here",
    "caption here", "add caption", "enter caption", "untitled image", "untitled photo", "image of", "photo of",
    "picture of", "an image", "a photo", "a picture", "an image of", "a photo of", "a picture of",
))
_BOILERPLATE_PATTERNS = (
    re.compile(r"^(?:image|photo|picture|img|pic|foto|slide|figure|fig)\s*#?\s*\d+(?:\s*(?:of|/)\s*\d+)?$"),
    re.compile(r"^[\w\-. ()\[\]~]*\.(?:jpe?g|png|gif|webp|bmp|tiff?|heic|heif|avif|svg|jfif)$"),  # a file name
    re.compile(r"^(?:img|dsc|dscn|dscf|pxl|dji|gopr|sam|wp|screenshot|screen shot)[\s_-]?\d[\w\s_.:-]*$"),
    re.compile(r"\blorem ipsum\b|\bplaceholder (?:text|image|caption|photo)\b|^placeholder\b|\bdolor sit amet\b"),
    re.compile(r"^(?:photo|image|picture) (?:of|showing)?\s*(?:an? )?(?:image|photo|picture)$"),
)
_WORD = re.compile(r"\w+(?:['’.-]\w+)*")


class Caption(NamedTuple):
    caption: str
    origin: str
    lang: str
    credit: str | None = None  # a credit that was glued to the caption and split off


def _key(text: str) -> str:
    return " ".join(re.sub(r"[^\w.]+", " ", text.lower()).split()).strip(" .")


def is_boilerplate(text: str) -> bool:
    key = _key(text)
    if key in _BOILERPLATE or key.replace(".", " ").strip() in _BOILERPLATE:
        return True
    raw = text.strip().lower()
    return any(p.search(key) or p.search(raw) for p in _BOILERPLATE_PATTERNS)


def text_reason(text: str, *, min_words: int, min_chars: int, max_chars: int) -> str | None:
    """The DataComp-style filters on a cleaned caption; None when it passes."""
    if not text:
        return reasons.CAPTION_EMPTY
    if is_boilerplate(text):
        return reasons.CAPTION_BOILERPLATE
    if len(_WORD.findall(text)) < min_words or len(text) < min_chars:
        return reasons.CAPTION_TOO_SHORT
    if len(text) > max_chars:
        return reasons.CAPTION_TOO_LONG
    return None


class _LangId:
    """py3langid's model, loaded once per process, normalised so scores are probabilities.

    Decompressing the shipped model costs ~1-2 s per worker process (more when all workers start at once); its
    arrays, saved once in the user cache as a plain NumPy ``.npz`` (read back with ``allow_pickle=False``: a
    cache directory someone else can write must never be able to run code in ours), load in a fraction of that.
    """

    _lock = threading.Lock()
    _model = None

    @classmethod
    def model(cls):
        if cls._model is None:
            with cls._lock:
                if cls._model is None:
                    cls._model = cls._load()
        return cls._model

    @staticmethod
    def _load():
        from importlib.metadata import version

        from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier, _load_model_file

        cache_dir = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mmpipe"
        cache = cache_dir / f"py3langid-{version('py3langid')}-model.npz"
        try:
            parts = _read_model(cache)
        except Exception:  # noqa: BLE001 - missing, stale or damaged cache: rebuild it
            parts = _load_model_file(Path(MODEL_DIR) / MODEL_FILE)
            _write_model(cache, parts)
        ptc, pc, classes, nextmove, row, output = parts
        return LanguageIdentifier(np.asarray(ptc), np.asarray(pc), classes, nextmove, output, norm_probs=True,
                                  tk_row=row)


def _read_model(path: Path) -> tuple:
    """The model's parts from our `.npz` cache, as py3langid's own loader returns them (arrays of the same types)."""
    with np.load(path, allow_pickle=False) as z:
        return (z["ptc"], z["pc"], z["classes"].tolist(), array.array("I", z["nextmove"].tobytes()),
                array.array("H", z["row"].tobytes()), z["output"].tolist())


def _write_model(path: Path, parts: tuple) -> None:
    ptc, pc, classes, nextmove, row, output = parts
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
        np.savez(tmp, ptc=np.asarray(ptc), pc=np.asarray(pc), classes=np.asarray(classes, dtype=str),
                 nextmove=np.frombuffer(nextmove, dtype=np.uint32), row=np.frombuffer(row, dtype=np.uint16),
                 output=np.asarray(output, dtype=np.int64))
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home only costs speed


def detect_lang(text: str, page_lang: str | None = None, *, prior_min: float = 0.2, prior_ratio: float = 0.25) -> str:
    """Offline language id.  Short captions are ambiguous, so the page's declared language wins unless the model
    is clearly for another one: it needs ``prior_min`` probability, or ``prior_ratio`` of the top language's."""
    if not text:
        return UNDETERMINED
    ranked = _LangId.model().rank(text)
    if not ranked:
        return UNDETERMINED
    if page_lang:
        declared = page_lang.strip().lower().replace("_", "-").split("-")[0]
        prob = dict(ranked).get(declared)
        if prob is not None and prob >= min(prior_min, prior_ratio * ranked[0][1]):
            return declared
    return ranked[0][0]


def _ordered(candidates: Iterable[Any]) -> list[tuple[str, str]]:
    pairs = []
    for cand in candidates or ():
        text, origin = (cand.get("text"), cand.get("origin")) if isinstance(cand, dict) else cand
        pairs.append((text or "", origin))
    # stable: several candidates of one origin keep the crawler's order
    return sorted(pairs, key=lambda p: RANK.get(p[1], len(RANK)))


def clean_caption(candidates: Sequence[Any], cfg: CleanConfig, *, page_lang: str | None = None) -> Caption | str:
    """Pick, clean and filter the caption; returns a `Caption` or a ``reasons.*`` drop reason.

    ``candidates`` are RAW ``caption_candidates`` entries (dicts with text/origin, or (text, origin) pairs).
    """
    first_reason = None
    for text, origin in _ordered(candidates):
        cleaned, credit = normalise_text(text)
        reason = text_reason(cleaned, min_words=cfg.min_words, min_chars=cfg.min_chars, max_chars=cfg.max_chars)
        lang = UNDETERMINED
        if reason is None:
            lang = detect_lang(cleaned, page_lang)
            if cfg.langs is not None and lang not in cfg.langs:
                reason = reasons.LANG_NOT_ALLOWED
        if reason is None:
            return Caption(cleaned, origin, lang, credit)
        if first_reason is None and reason != reasons.CAPTION_EMPTY:
            first_reason = reason
    return first_reason or reasons.CAPTION_EMPTY
