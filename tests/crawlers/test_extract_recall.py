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


def test_a_hash_folder_named_ad_is_not_an_ad_directory():
    """Wikimedia's `/thumb/a/ad/<file>` and spiceworks' `/ad/93/9f09.../` are slices of a hash: the Queen's
    portrait on wikipedia-2 and spiceworks' og:image were dropped as ads.  A real `/ad/` folder still is chrome."""
    html = _page("<figure><img src='https://upload.wikimedia.org/wikipedia/commons/thumb/a/ad/Queen_Elizabeth_II.jpg"
                 "/304px-Queen_Elizabeth_II.jpg'><figcaption>The Queen</figcaption></figure>"
                 "<p><img src='https://ex.org/static/ad/campaign-spring.jpg' width='600' height='400'></p>",
                 head="<meta property='og:image' content='https://images.ex.org/ad/93/9f099ec74374a67121/viyard.jpg'>")
    urls = [r.url for r in extract_article("https://ex.org/news/queen.html", html).images]
    assert urls == ["https://upload.wikimedia.org/wikipedia/commons/thumb/a/ad/Queen_Elizabeth_II.jpg/"
                    "304px-Queen_Elizabeth_II.jpg", "https://images.ex.org/ad/93/9f099ec74374a67121/viyard.jpg"]


def test_a_placeholder_name_is_the_word_itself_not_a_word_that_starts_with_it():
    """001 (Readability's set): `blanket-coverage.png`, a screenshot, was taken for a `blank` placeholder."""
    html = _page("<p><img alt='screenshot' src='/static/code/2013/blanket-coverage.png'></p>"
                 "<p><img src='/img/blank.gif' data-src='/up/pier-photo.jpg'></p>")
    urls = [r.url for r in extract_article("https://ex.org/code/2013/coverage.html", html).images]
    assert urls == ["https://ex.org/static/code/2013/blanket-coverage.png", "https://ex.org/up/pier-photo.jpg"]


def test_a_run_of_numeric_folders_is_an_id_path_not_a_width():
    """qq.com's `/pics/hv1/168/240/2140/139214868.jpg` read as a 168-px thumbnail and dropped; BBC's
    `/news/976/cpsprodpb/` is a width, and `/news/120/` a thumbnail."""
    html = _page("<p><img src='http://img1.gtimg.com/tech/pics/hv1/168/240/2140/139214868.jpg'></p>"
                 "<p><img src='https://ichef.bbci.co.uk/news/976/cpsprodpb/462D/production/_84456971_rally.jpg'></p>"
                 "<p><img src='https://ichef.bbci.co.uk/news/120/cpsprodpb/1A2B/production/_84458628_other.jpg'></p>")
    urls = [r.url for r in extract_article("https://ex.org/news/a.html", html).images]
    assert urls == ["http://img1.gtimg.com/tech/pics/hv1/168/240/2140/139214868.jpg",
                    "https://ichef.bbci.co.uk/news/976/cpsprodpb/462D/production/_84456971_rally.jpg"]


def test_a_proxy_path_and_a_retina_size_token_name_the_same_picture():
    """forbes (scrapinghub a078b365): the og:image is a Thumbor URL with the body picture percent-encoded in its
    path; crazy-julia.de: the body's `douglas-handcreme-1200x800@2x.webp` is the og:image's `douglas-handcreme.jpg`.
    Each was two records of one picture."""
    forbes = _page("<figure><img src='https://images.ex.com/imageserve/1161232231/960x0.jpg?fit=scale'>"
                   "<figcaption>A duvet</figcaption></figure>",
                   head="<meta property='og:image' content='https://thumbor.ex.com/thumbor/1280x868/https%3A%2F%2F"
                        "images.ex.com%2Fimageserve%2F1161232231%2F960x0.jpg'>")
    assert len(extract_article("https://ex.com/sites/duvet/", forbes).images) == 1
    julia = _page("<p><img srcset='https://ex.de/up/2019/05/douglas-handcreme-1200x800@2x.webp 2400w'></p>",
                  head="<meta property='og:image' content='https://ex.de/up/2019/05/douglas-handcreme.jpg'>")
    (ref,) = extract_article("https://ex.de/tipps/", julia).images
    assert ref.role == "lead"


def test_a_captioned_photo_block_beside_the_story_is_kept():
    """wapo-2: `<div class="inline-photo"><a name=...></a><img><span>caption</span></div>` beside the story's
    `<article>`, inside the same article body: no `<figure>`, so it was left out of the content block."""
    html = ("<html><body><div class='pb-feature'><div class='inline-photo'><a name='1c16'></a>"
            "<img src='https://img.ex.com/rf/image_400w/Images/Nic6429750-1140.jpg' "
            "data-hi-res-src='https://img.ex.com/rf/image_1484w/Images/Nic6429750-1140.jpg'><br>"
            "<span class='pb-caption'>The prime minister at the Western Wall on March 18.</span></div>"
            f"<article>{_STORY * 6}</article></div><div class='promo'><img src='/up/promo.jpg'></div></body></html>")
    urls = [r.url for r in extract_article("https://ex.com/news/a.html", html).images]
    assert urls == ["https://img.ex.com/rf/image_1484w/Images/Nic6429750-1140.jpg"]


def _quanta_section(paragraphs: int) -> str:
    return ("<div class='acf-content'><section class='outer'><div class='flex-auto'>"
            f"<div class='post__content__section'><div class='post__content'>{_STORY * paragraphs}</div></div></div>"
            "</section></div>")


def test_the_figures_between_the_sections_of_a_story_are_its_own():
    """Quanta (quanta-1, scrapinghub bdb56ac8): each text section of the story sits in five wrappers that hold
    only it, and the captioned figures stand between the sections; the winning section's siblings were the
    wrappers' empty insides, so no figure of the story was read.  As Readability does, the block climbs the
    wrappers that hold only it."""
    html = ("<html><body><div id='postBody'>"
            "<figure><div><img src='https://cdn.ex.org/uploads/2019/05/Lede.gif' alt='A drawing'></div>"
            "<figcaption>The programmers of the computer that found chaos.</figcaption></figure>"
            f"{_quanta_section(8)}<figure><div><img src='https://cdn.ex.org/uploads/2019/05/Clip.jpg'></div>"
            f"<figcaption>The acknowledgements in the 1963 paper.</figcaption></figure>{_quanta_section(3)}"
            "</div><div class='post__footer'><a href='/other-story/'><img src='/up/other.jpg'></a></div>"
            "</body></html>")
    refs = extract_article("https://ex.org/hidden-heroines-of-chaos/", html).images
    assert [(r.url.rsplit("/", 1)[-1], [t for t, o in r.candidates if o == "figcaption"]) for r in refs] == [
        ("Lede.gif", ["The programmers of the computer that found chaos."]),
        ("Clip.jpg", ["The acknowledgements in the 1963 paper."])]


def test_a_credit_class_is_a_whole_word_of_a_class_name():
    """Quanta's caption box has the CSS-in-JS class `_pattribution-w-auto` ("attribution" inside a word): the whole
    caption went to `credit`.  The inner `attribution` element is the credit."""
    html = _page("<figure><img src='/up/lede.jpg'><figcaption><div class='w-100P _pattribution-w-auto _pcaption-w'>"
                 "<div class='caption wysiwyg'><p>Ellen Fetter and Margaret Hamilton programmed the computer.</p>"
                 "</div>"
                 "<div class='attribution wysiwyg'><p>Olena Shmahalo/Quanta Magazine</p></div></div></figcaption>"
                 "</figure>")
    (ref,) = extract_article("https://ex.org/a/", html).images
    assert ("Ellen Fetter and Margaret Hamilton programmed the computer.", "figcaption") in ref.candidates
    assert ref.credit == "Olena Shmahalo/Quanta Magazine"


# --- the benchmark's truth (benchmarks/extract_truth.py) -------------------------------------------------------

def test_truth_lookups_never_move_a_pictures_root():
    """A record's URL that the page never named (another size of a picture) joined its picture by making itself
    the root, so a root taken before the lookup no longer matched: the scores depended on lookup order."""
    pics = T.Pictures()
    pics.add_element(["https://ex.org/up/harbour-dawn-800x600.jpg"])
    root = pics.find("https://ex.org/up/harbour-dawn-800x600.jpg")
    assert pics.find("https://ex.org/up/harbour-dawn-1600x1200.jpg") == root  # a new size variant: same picture
    assert pics.find("https://ex.org/up/harbour-dawn-800x600.jpg") == root


def test_truth_caption_pair_is_named_by_the_picture_not_its_lazy_placeholder():
    """spokesman.com: `<img src="sr-loader.png" data-srcset="meth_t300.jpg 300w, ...">` in every figure; the pair
    was named by the loader, which the truth itself treats as a placeholder, so no record could recover it."""
    figures = "".join(f"<figure><img class='lazyload' src='/graphics/sr-loader.png' "
                      f"data-srcset='/photos/p{i}_t300.jpg 300w, /photos/p{i}_t1200.jpg 1200w'>"
                      f"<figcaption>Caption {i}</figcaption></figure>"
                      for i in range(3))
    page = T.Page("scrapinghub", "x", "https://ex.com/stories/a/", f"<html><body>{figures}</body></html>".encode())
    truth = T.page_truth(page)
    assert sorted(p.picture for p in truth.captions) == [f"https://ex.com/photos/p{i}_t300.jpg" for i in range(3)]
