"""Caption cleaning, filtering, language id and the caption choice rule."""

from __future__ import annotations

import pytest

from data_schemas import reasons
from pipeline.captions import Caption, clean_caption, detect_lang, is_boilerplate, text_reason
from pipeline.config import CleanConfig
from pipeline.text import normalise_space, normalise_text

CFG = CleanConfig(raw="r", out="o")  # the stage's defaults
LIMITS = {"min_words": CFG.min_words, "min_chars": CFG.min_chars, "max_chars": CFG.max_chars}


@pytest.mark.parametrize(("raw", "clean"), [
    # mojibake (UTF-8 read as cp1252) is repaired
    ("Two red circles outside the cafÃ© in MÃ¡laga, officials said.",
     "Two red circles outside the café in Málaga, officials said."),
    # entities, including a double-escaped one, and tags
    ("Council &amp; residents meet &quot;today&quot;", 'Council & residents meet "today"'),
    ("&lt;b&gt;Bold&lt;/b&gt; move by the council", "Bold move by the council"),
    ("<p>The <em>mayor</em> speaks</p><br/>to reporters<script>alert(1)</script>", "The mayor speaks to reporters"),
    # whitespace: NBSP, zero-width, newlines, tabs
    ("A\u00a0quiet\u200b street\n\tin  the   old town ", "A quiet street in the old town"),
    # URLs, e-mails and handles
    ("Read more at https://example.com/a?b=1 about the storm", "Read more at about the storm"),
    ("Mail press@example.org or visit www.example.org for the storm photos", "Mail or visit for the storm photos"),
    ("Thanks @alice@mastodon.social and @bob for these storm pictures", "Thanks and for these storm pictures"),
    # UI leftovers
    ("Winners of the award (click to enlarge)", "Winners of the award"),
])
def test_normalise_text(raw: str, clean: str) -> None:
    assert normalise_text(raw)[0] == clean


@pytest.mark.parametrize(("raw", "clean", "credit"), [
    ("Firefighters battle a blaze in Athens. Photo: Jane Doe/Reuters", "Firefighters battle a blaze in Athens.",
     "Jane Doe/Reuters"),
    ("Firefighters battle a blaze (AP Photo/Jane Doe)", "Firefighters battle a blaze", "AP Photo/Jane Doe"),
    ("Crowds in the square. Credit: John Smith/Getty Images", "Crowds in the square.", "John Smith/Getty Images"),
    ("Children play in the snow in Kyiv. John Smith/Getty Images", "Children play in the snow in Kyiv.",
     "John Smith/Getty Images"),
    ("Sunset over the harbour © 2024 Jane Doe", "Sunset over the harbour", "© 2024 Jane Doe"),
    ("The team celebrates the win. AFP via Getty Images", "The team celebrates the win.", "AFP via Getty Images"),
    # not credits: a photo *of* something, a photo *by* a place
    ("A woman holds a photo of her son at the rally", "A woman holds a photo of her son at the rally", None),
    ("A photo by the lake at sunset with friends", "A photo by the lake at sunset with friends", None),
])
def test_credits_are_split_off(raw: str, clean: str, credit: str | None) -> None:
    assert normalise_text(raw) == (clean, credit)


@pytest.mark.parametrize("text", ["image", "Photo", "Click to enlarge", "IMG_4032.JPG", "DSC_0192.jpg",
                                  "placeholder", "untitled", "Image 3 of 10", "photo-2024-01-01.png",
                                  "Lorem ipsum dolor sit amet, consectetur adipiscing elit"])
def test_boilerplate(text: str) -> None:
    assert is_boilerplate(text)
    assert text_reason(normalise_text(text)[0], **LIMITS) == reasons.CAPTION_BOILERPLATE


@pytest.mark.parametrize(("text", "reason"), [
    ("", reasons.CAPTION_EMPTY),
    ("Sunset", reasons.CAPTION_TOO_SHORT),
    ("Red shapes", reasons.CAPTION_TOO_SHORT),  # 2 words
    ("a b c", reasons.CAPTION_TOO_SHORT),  # 3 words but 5 characters
    ("a b cd", None),  # 3 words, 6 characters: the DataComp minimum passes
    ("word " * 250, reasons.CAPTION_TOO_LONG),
    ("A dog runs on the beach", None),
])
def test_text_filters(text: str, reason: str | None) -> None:
    assert text_reason(" ".join(text.split()), **LIMITS) == reason


def test_caption_choice_follows_preference_and_skips_failing_candidates() -> None:
    cands = [{"text": "Sunset", "origin": "title"}, {"text": "IMG_1234.jpg", "origin": "figcaption"},
             {"text": "Two red circles above a blue square", "origin": "alt"},
             {"text": "Blue squares on a green background today", "origin": "context"}]
    got = clean_caption(cands, CFG)
    assert isinstance(got, Caption)
    assert (got.caption, got.origin, got.lang) == ("Two red circles above a blue square", "alt", "en")


def test_caption_drop_reason_is_the_best_non_empty_candidates() -> None:
    # figcaption (rank 1) cleans to empty, alt (rank 3) is boilerplate, title (rank 7) too short
    cands = [("Sunset", "title"), ("https://example.com/x.jpg", "figcaption"), ("Click to enlarge", "alt")]
    assert clean_caption(cands, CFG) == reasons.CAPTION_BOILERPLATE
    assert clean_caption([("  <br>  ", "alt")], CFG) == reasons.CAPTION_EMPTY
    assert clean_caption([], CFG) == reasons.CAPTION_EMPTY


def test_language_allow_list() -> None:
    cfg = CleanConfig(raw="r", out="o", langs=["en", "de"])
    french = [("Les pompiers luttent contre un incendie près d'Athènes", "figcaption")]
    assert clean_caption(french, cfg) == reasons.LANG_NOT_ALLOWED
    both = french + [("Firefighters battle a blaze near Athens on Monday", "alt")]
    assert clean_caption(both, cfg).lang == "en"
    assert clean_caption(french, CFG).lang == "fr"  # default: every language


@pytest.mark.parametrize(("text", "lang"), [
    ("Deux cercles rouges au-dessus d'un carré bleu sur fond vert", "fr"),
    ("Zwei rote Kreise über einem blauen Quadrat auf grünem Hintergrund", "de"),
    ("Dos círculos rojos encima de un cuadrado azul sobre fondo verde", "es"),
    ("Two red circles above a blue square on a green background", "en"),
])
def test_detect_lang(text: str, lang: str) -> None:
    assert detect_lang(text) == lang
    assert detect_lang(text, "en-GB") == lang or lang == "en"  # a clear text beats the page's declared language


def test_page_language_breaks_ties_on_ambiguous_text() -> None:
    assert detect_lang("Taxi Hotel Restaurant", "de") == "de"


def test_line_breaking_characters_table_is_exactly_cc_zl_zp() -> None:
    """normalise_space turns categories Cc, Zl and Zp into spaces through a fixed table: it must hold every such
    code point of this Python's Unicode database and nothing else."""
    import sys
    import unicodedata

    from pipeline.text import _BREAKS

    expected = {c for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) in ("Cc", "Zl", "Zp")}
    assert set(_BREAKS) == expected
    assert normalise_space("a\x85b\u2028c\u2029d\x00e\x7f\tf\u00a0g") == "a b c d e f g"
