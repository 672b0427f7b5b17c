"""Issue #14, the misses of the first pass: content pictures and figure captions the extractor lost on real pages.

Every test is a minimal page built from the real case named in its docstring (the fixture pages themselves stay in
../shared/fixtures); the benchmark (`benchmarks/bench_extract.py --misses N`) lists the cases page by page.
"""

from __future__ import annotations

from benchmarks import extract_truth as T
from crawlers.extract.article import extract_article

_STORY = "<p>A paragraph of the story that is long enough, with commas, to count as the text of the story.</p>"


def _page(body: str, *, head: str = "") -> str:
    return f"<html><head>{head}</head><body><article>{_STORY}{body}{_STORY}</article></body></html>"


def test_a_picture_with_many_sources_keeps_its_figure_and_its_largest_source():
    """The Guardian, Newsweek: `<picture>` with eight or ten `<source>`s.  libxml2 nests each element after an
    unclosed `<source>` inside it, so the `<img>` sat ten levels below its `<figure>`: no figcaption was found and
    the `<source>` candidates were never read (the 300-px `src` won)."""
    sources = "".join(f"<source media='(min-width: {w}px)' srcset='https://i.ex.org/img/harbour.jpg?width={w} {w}w'>"
                      for w in (1300, 1140, 980, 860, 740, 660, 620, 480, 380, 300))
    html = _page(f"<figure><div><picture>{sources}<img src='https://i.ex.org/img/harbour.jpg?width=300' "
                 "alt='Boats'></picture></div><figcaption>Boats in the harbour at dawn</figcaption></figure>")
    (ref,) = extract_article("https://ex.org/news/harbour.html", html).images
    assert ("Boats in the harbour at dawn", "figcaption") in ref.candidates
    assert ref.url == "https://i.ex.org/img/harbour.jpg?width=1300"
