"""Caption text normalisation: pure string -> string steps, each with one job.

Order matters and is fixed by `normalise_text`: repair mojibake first (ftfy needs the original bytes' mistakes),
then markup (tags may hide entities and vice versa), then whitespace, then scrub contact data, then strip credits
(credits often sit after a URL or handle), then UI leftovers such as "click to enlarge".
"""

from __future__ import annotations

import html
import re

import ftfy

_TAG = re.compile(r"<\s*(script|style)\b.*?</\s*\1\s*>|<!--.*?-->|</?[a-zA-Z][^<>]{0,2000}?/?>", re.S | re.I)
_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
_SPACE = re.compile(r"\s+")
_URL = re.compile(r"\b(?:https?://|ftp://|www\.)[^\s<>\"')\]]+", re.I)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
# @user and Mastodon's @user@instance.social; not e-mail (handled first) and not "a@b" inside a word
_FEDI_HANDLE = re.compile(r"(?<![\w@])@\w+(?:[.-]\w+)*@[\w-]+(?:\.[\w-]+)+")
_HANDLE = re.compile(r"(?<![\w@])@\w(?:[\w.]*\w)?")
_EMPTY_BRACKETS = re.compile(r"\(\s*\)|\[\s*\]|\{\s*\}")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.)\]])")  # not before ;:!? (French typography spaces them)
_DANGLING = re.compile(r"(?:\s*[-–—|:/,;•·]+)+\s*$|^\s*(?:[-–—|:/,;•·]+\s*)+")

_AGENCIES = (r"Getty Images|AFP|Reuters|AP|EPA(?:-EFE)?|Shutterstock|Alamy|iStock(?:photo)?|Bloomberg|"
             r"Xinhua|Anadolu|dpa|ANP|PA(?: Wire)?|NurPhoto|SOPA Images|Zuma(?: Press)?|Sipa|Pool|Unsplash|Pexels")
_PIC_WORD = r"(?:(?:AP|AFP|Reuters|EPA)\s+)?(?:Photo(?:graph)?s?|Image|Picture|Pic|Foto|Illustration)"
_PIC_WORD_UPPER = r"(?:(?:AP|AFP|REUTERS|EPA)\s+)?(?:PHOTO(?:GRAPH)?S?|IMAGE|PICTURE|PIC|FOTO|ILLUSTRATION)"
_CREDIT_WORD = r"(?:(?:Photo|Image|Picture)\s+credits?|Credits?|Source|Copyright|Courtesy)"
_NAME = r"(?:[A-Z][\w'’-]*|[A-Z]\.)"  # a capitalised name word or an initial; "Kyiv." ends a sentence
_BOUNDARY = r"(?:(?<=[.!?|–—:;,])\s*|\s+[|–—-]\s+|\s+)"
_CREDIT_PATTERNS = (
    # "(AP Photo/Jane Doe)", "[Photo: X]", "(Credit: ...)", "(© Jane Doe)", "(Reuters)"
    re.compile(rf"[(\[]\s*(?:(?:{_PIC_WORD}|{_CREDIT_WORD})\b[^()\[\]]*|©[^()\[\]]*|(?:{_AGENCIES}))[)\]]", re.I),
    # "Credit: X", "... | Source: X" anywhere to the end
    re.compile(rf"(?:^|{_BOUNDARY}){_CREDIT_WORD}\s*(?::|：|\bof\b)\s*.{{0,120}}$", re.I),
    # "... Photo: Jane Doe/Reuters", "PHOTO: X" (capitalised, not at the start: "Photo: a dog" may be the caption,
    # and "Sur cette photo : un cercle ..." is French typography, not a credit)
    re.compile(rf"{_BOUNDARY}(?:{_PIC_WORD}|{_PIC_WORD_UPPER})\s*[:：]\s*.{{0,80}}$"),
    # "... . Photo by Jane Doe on Unsplash" (capitalised after a sentence end: "a photo by the lake" stays)
    re.compile(rf"(?:^|(?<=[.!?|–—])\s*|\s+[|–—-]\s+){_PIC_WORD}\s+(?:by|courtesy of)\s+.{{0,120}}$"),
    # "... © 2024 Jane Doe", "... Copyright 2024 X"
    re.compile(r"\s*(?:©|\(c\)\s+\d{4}|\bCopyright\s+\d{4}).{0,120}$", re.I),
    # "... Jane Doe/Getty Images", "... via Getty Images", "... AFP via Getty Images"
    re.compile(rf"(?:\s*[-–—|]\s*|\s+|^)(?:{_NAME}(?:\s+{_NAME}){{0,3}}\s*/\s*)?(?:via\s+)?(?:{_AGENCIES})"
               rf"(?:\s*(?:via|/)\s*(?:{_AGENCIES}))*\s*\.?\s*$"),
)
# "Photo: Jane Doe/Reuters" -> "Jane Doe/Reuters" (the crawler's extractors store credits without the label)
_CREDIT_LABEL = re.compile(r"^(?:(?:Photo|Image|Picture)\s+credits?|Photo(?:graph)?s?|Image|Picture|Pic|Foto|"
                           r"Credits?|Source|Courtesy(?:\s+of)?)\s*[:：]\s*|^Courtesy\s+of\s+", re.I)
_UI_LEFTOVERS = re.compile(
    r"[\s(\[]*\b(?:click|tap)(?: here)? to (?:enlarge|expand|zoom|view larger|see more)\b[)\].]*"
    r"|[\s(\[]*\b(?:enlarge this image|view larger image|expand image|open in new window)\b[)\].]*", re.I)


def fix_encoding(text: str) -> str:
    """Mojibake ("cafÃ©") and HTML-escaped text from feeds; must run before anything looks at characters."""
    return ftfy.fix_text(text, unescape_html=False, normalization="NFC")


def strip_markup(text: str) -> str:
    """Tags and entities, twice: feeds often escape markup once more (``&lt;b&gt;`` -> ``<b>``)."""
    for _ in range(2):
        text = _TAG.sub(" ", text)
        unescaped = html.unescape(text)
        if unescaped == text:
            break
        text = unescaped
    return _TAG.sub(" ", text)


# Every code point of Unicode categories Cc (C0, DEL, C1), Zl and Zp: Unicode's stability policy fixes these sets,
# and a translate table is ~5x faster than asking unicodedata about each character (a test checks the table).
_BREAKS = {c: " " for c in (*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029)}


def normalise_space(text: str) -> str:
    text = _INVISIBLE.sub("", text).translate(_BREAKS)
    return _SPACE.sub(" ", text).strip()


def scrub_contacts(text: str) -> str:
    """URLs, e-mail addresses and @handles identify people or are noise for a caption model."""
    text = _URL.sub(" ", text)
    text = _FEDI_HANDLE.sub(" ", text)
    text = _EMAIL.sub(" ", text)
    return _HANDLE.sub(" ", text)


def split_credit(text: str) -> tuple[str, str | None]:
    """Separate a photo credit still glued to the caption; returns (caption, credit or None)."""
    credits = []
    for pattern in _CREDIT_PATTERNS:
        match = pattern.search(text)
        if match and match.group(0).strip():
            credits.append(match.group(0))
            text = text[: match.start()] + " " + text[match.end():]
    credit = None
    if credits:
        parts = [_CREDIT_LABEL.sub("", c.strip(" ()[]|–—-.,;")) for c in credits]
        credit = normalise_space(" ".join(parts)) or None
    return text, credit


def tidy(text: str) -> str:
    """Remove what the removals above leave behind: empty brackets, dangling separators, space before commas."""
    without_ui = _UI_LEFTOVERS.sub(" ", text)
    if without_ui.strip(" ()[].!"):  # "Click to enlarge" alone stays, so the boilerplate filter can name it
        text = without_ui
    for _ in range(3):
        before = text
        text = _EMPTY_BRACKETS.sub(" ", text)
        text = normalise_space(text)
        text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
        text = _DANGLING.sub("", text).strip()
        if text == before:
            break
    return text


def normalise_text(text: str | None) -> tuple[str, str | None]:
    """The full cleaning chain; returns (clean caption, credit found in it or None)."""
    if not text:
        return "", None
    text = fix_encoding(text)
    text = strip_markup(text)
    text = normalise_space(text)
    text = scrub_contacts(text)
    text = normalise_space(text)
    text, credit = split_credit(text)
    return tidy(text), credit
