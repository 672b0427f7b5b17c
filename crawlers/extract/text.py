"""Text helpers shared by the page objects: whitespace normalisation and photo-credit separation.

Credits are split off in the crawler because only here do we still see the markup that marks them (a `<span
class="credit">`, a `<small>` in a figcaption); the clean stage strips any credit still glued to a caption.
"""

from __future__ import annotations

import re
from functools import lru_cache

MAX_CREDIT_CHARS = 80  # credits name a photographer and an agency; longer text is a caption
MAX_CREDIT_WORDS = 10
_AGENCIES = (r"Getty\s+Images|Reuters|REUTERS|AP|AFP|EPA(?:-EFE)?|dpa|DPA|ANP|PA(?:\s+Wire)?|Shutterstock|Alamy|"
             r"Bloomberg|Xinhua|Kyodo|Pool|NurPhoto|SIPA|Sipa(?:\s+USA)?|Corbis|iStock(?:photo)?|Imago|IMAGO|"
             r"Keystone|Anadolu(?:\s+Agency)?|AAP|NASA|Wikimedia\s+Commons|Unsplash|Flickr")
_CREDIT_WORDS = r"(?:Photo(?:graph)?s?|Pictures?|Images?|Credits?|Foto|Bild|Source|Illustration|Video)"
_CREDIT_LABELS = r"(?:Photo(?:graph)?s?|Pictures?|Images?|Credits?|Foto|Bild|Source|Illustration|Video|PHOTO|CREDIT)"
# A trailing parenthesised credit: "(AP Photo/Jane Doe)", "(Photo: X)", "(Getty Images)", "(Reuters)".
_PAREN = re.compile(rf"\s*\((?:(?:[A-Z][\w.&-]*\s+)?{_CREDIT_WORDS}\b[^()]*|(?:[^()/]*/\s*)?(?:{_AGENCIES}))\)\s*$")
# "Photo: X/Reuters", "Photograph by X", "Credit: X", "Image courtesy of X" to the end of the text.
# The label is capitalised and the colon attached ("Photo: X"): "sur cette photo : …" is a caption, not a credit.
_LABELLED = re.compile(rf"(?:^|(?<=[.!?:;])\s+|\s+[|–—-]\s+|\s+)((?:{_CREDIT_LABELS})"
                       r"(?::|\s+by\b|\s+courtesy(?:\s+of)?\b)\s*\S.*)$")
_COPYRIGHT = re.compile(r"(?:^|\s+)((?:©|\(c\)|Copyright\b)\s*\S.*)$", re.IGNORECASE)
# "… on Monday. Jane Doe/Getty Images" or "… on Monday. Getty Images" (agency at the very end).
_AGENCY_TAIL = re.compile(rf"(?:^|(?<=[.!?])\s+|\s+[|–—-]\s+)((?:[A-Z][\w.'-]*(?:\s+[A-Z][\w.'-]*){{0,3}}\s*/\s*)?"
                          rf"(?:{_AGENCIES})(?:\s*/\s*[A-Z][\w.'-]*(?:\s+[A-Z][\w.'-]*){{0,3}})?)\s*$")


def clean_text(text: str | None) -> str:
    """Collapse whitespace; the words stay exactly as the parser decoded them (no second entity decoding:
    a double-escaped `&amp;amp;` is the publisher's text, and repairing it is the clean stage's job)."""
    if not text:
        return ""
    return " ".join(text.split())  # str.split() and `\s` agree on every code point; split is 3x faster


def _literal_heads(alternation: str) -> tuple[str, ...]:
    """The text every alternative of a flat regex alternation must contain: its literal prefix, less a last
    character made optional ("Pictures?" -> "Picture", "Getty\\s+Images" -> "Getty", "EPA(?:-EFE)?" -> "EPA")."""
    inner = alternation[3:-1] if alternation.startswith("(?:") else alternation
    heads = []
    for alt in inner.split("|"):
        m = re.match(r"[\w&'.-]*", alt)
        head = m.group(0) if m else ""
        if alt[len(head):len(head) + 1] in ("?", "*", "{"):
            head = head[:-1]
        if not head:
            raise ValueError(f"credit pattern alternative without a literal head: {alt!r}")
        heads.append(head)
    return tuple(heads)


_LABEL_WORDS = _literal_heads(_CREDIT_LABELS)  # derived, so the prefilter can never miss a label or an agency
_AGENCY_WORDS = _literal_heads(_AGENCIES)


def _may_match(text: str) -> tuple[re.Pattern, ...]:
    """The credit patterns that can match `text` at all, by substring tests that each pattern requires: most
    captions carry no credit, and the patterns' leftmost search over every position is the costly part."""
    found = []
    if text.endswith(")"):
        found.append(_PAREN)
    if any(word in text for word in _LABEL_WORDS):
        found.append(_LABELLED)
    if "©" in text or "(" in text or "opyright" in text.lower():
        found.append(_COPYRIGHT)
    if any(name in text for name in _AGENCY_WORDS):
        found.append(_AGENCY_TAIL)
    return tuple(found)


def split_credit(text: str) -> tuple[str, str | None]:
    """Separate a photo credit from a caption: ("Caption.", "Photo: X/Reuters"); a leading one too
    ("Bild: pixabay Ein Gericht ..." -> ("Ein Gericht ...", "Bild: pixabay"))."""
    text = clean_text(text)
    if not text:
        return "", None
    leading = leading_credit(text)
    if leading is not None:
        return leading
    for pattern in _may_match(text):
        m = pattern.search(text)
        if not m:
            continue
        credit = m.group(1) if pattern.groups else m.group(0)
        if len(credit) > MAX_CREDIT_CHARS or len(credit.split()) > MAX_CREDIT_WORDS:
            continue  # "Im Bild: zwei Sterne …" is a caption that starts with a label, not a credit
        credit = credit.strip().strip("()").strip()
        caption = text[: m.start()].strip()
        caption = caption.rstrip(" |–—-").strip()
        return caption, credit or None
    return text, None


_LEADING = re.compile(rf"^(?:{_CREDIT_LABELS})\s*:\s*(?=\S)")
_SEPARATOR = re.compile(r"\s+[|–—-]\s+|;\s+|(?<=[a-z]{2})\.\s+|\s*•\s*")
_AGENCY_WORD = re.compile(rf"^(?:{_AGENCIES})$")
MIN_CAPTION_WORDS = 3  # a leading credit is split off only when at least this much caption follows it


def leading_credit(text: str) -> tuple[str, str] | None:
    """("caption", "Label: credit") for a caption that *starts* with a labelled credit, else None.

    Where the credit ends: at a separator (" | ", " - ", "; ", a sentence end); else after the last of its
    first words that holds a "/" ("Jane Doe/dpa"); else after a first word that is lower case or an agency
    ("pixabay", "dpa"); else after two capitalised words (a first and a last name).  Fewer than
    MIN_CAPTION_WORDS words left over means the whole text is a credit line, not a caption with one."""
    m = _LEADING.match(text)
    if not m:
        return None
    rest = text[m.end():]
    sep = _SEPARATOR.search(rest)
    if sep and len(rest[: sep.start()].split()) <= MAX_CREDIT_WORDS - 2:
        name, caption = rest[: sep.start()], rest[sep.end():]
    else:
        words = rest.split()
        slash = [i for i, w in enumerate(words[:6]) if "/" in w]
        if slash:
            cut = slash[-1] + 1
        elif words and (words[0][:1].islower() or _AGENCY_WORD.match(words[0].strip(",."))):
            cut = 1 + (len(words) > 1 and _AGENCY_WORD.match(f"{words[0]} {words[1]}") is not None)
        else:
            cut = 2 if len(words) > 1 and words[1][:1].isupper() else 1
        name, caption = " ".join(words[:cut]), " ".join(words[cut:])
    if len(caption.split()) < MIN_CAPTION_WORDS:
        return None
    return caption.strip(), (m.group(0) + name).strip(" ,.")


_LABEL = re.compile(rf"^(?:{_CREDIT_WORDS})\s*(?::|\bby\b|\bcourtesy(?:\s+of)?\b)\s*|^(?:©|\(c\)|Copyright\b)\s*",
                    re.IGNORECASE)


def normalize_credit(credit: str | None) -> str | None:
    """The credited party without its label: "Photo: Jane Doe/Reuters" -> "Jane Doe/Reuters",
    "(AP Photo/Jane Doe)" -> "AP Photo/Jane Doe", "© Jane Doe" -> "Jane Doe"."""
    credit = clean_text(credit).strip("()[] ")
    previous = None
    while credit and credit != previous:  # labels can repeat: "Credit Credit Jane Doe"
        previous = credit
        credit = _LABEL.sub("", credit).strip("()[] ")
        credit = re.sub(r"^credits?\s+(?=\S)", "", credit, flags=re.IGNORECASE)
    return credit or None


@lru_cache(maxsize=8192)
def find_credit(text: str | None) -> str | None:
    """The photo credit glued to a caption or alt text, normalised; None when there is none.  Cached: the same
    alt text and caption come back as figcaption, alt and metadata candidates, and on a site's every page."""
    return normalize_credit(split_credit(text or "")[1])


def is_credit_only(text: str) -> bool:
    """True for text that is nothing but a credit ("Getty Images", "Photo: Jane Doe")."""
    caption, credit = split_credit(text)
    return bool(credit) and not caption
