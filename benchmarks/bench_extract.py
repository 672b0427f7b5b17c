"""News-extraction quality and CPU on every real saved page of ../shared/fixtures/news.

    python benchmarks/bench_extract.py [--fixtures DIR] [--repeats 3] [--impl ours] [--misses N] [--json FILE]
    python benchmarks/bench_extract.py --against DIR [--rounds 5]   # CPU of this code vs another checkout's

For each page set (readability, scrapinghub, trafilatura-cache) and overall it prints: content-picture precision
and recall against the pictures Readability's `expected.html` keeps (readability set; "strict" leaves out the
page's declared lead picture, which Readability often cuts with the header), figure/figcaption caption recall, the
share of records that are the page's own URL, a non-image or a second record of one picture, whether the declared
lead (og:image / JSON-LD image) is the record marked `role == "lead"`, and CPU-ms per page (median and p95 over
pages of the median of `--repeats` runs).  The truth is derived in `benchmarks/extract_truth.py` (read its
docstring for every rule).

`--against DIR` (a checkout of another commit, e.g. `git worktree add /tmp/base <commit>`) runs this code's and
that code's extractor in alternating subprocesses, `--rounds` times each, on the same pages, and prints each
side's median total CPU per page and the ratio (machines are noisy: the two sides share every slow minute).

`--impl` picks the extractor: `ours` (crawlers.extract.article), or one of the library comparisons of
`benchmarks/extract_alternatives.py` (`readability-lxml`, `trafilatura`: their content block chooses which body
images are kept; `extruct`: metadata parsed with extruct).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks import extract_truth as T  # noqa: E402


def _ours(url: str, body: bytes):
    from crawlers.extract.article import extract_article

    return extract_article(url, body).images


def implementations() -> dict:
    impls = {"ours": _ours}
    try:
        from benchmarks import extract_alternatives

        impls.update(extract_alternatives.IMPLS)
    except ImportError:
        pass
    return impls


def score_page(truth: T.PageTruth, refs) -> dict:
    """Counts for one page: records, bad records, content matches, caption pairs, lead."""
    pics = truth.pictures
    out = defaultdict(int)
    kept = [r for r in refs if getattr(r, "role", None) != "teaser"]
    out["records"] = len(kept)
    seen: set[str] = set()
    matched_content: set[str] = set()
    strict_roots = {pics.find(u) for u in truth.content or []}
    content_roots = strict_roots | ({pics.find(truth.lead)} if truth.lead and truth.content is not None else set())
    for ref in kept:
        root = pics.find(ref.url)
        if T.norm_url(ref.url) in truth.own_urls:
            out["self_url"] += 1
        elif T.is_non_image(ref.url):
            out["non_image"] += 1
        elif root in seen:
            out["size_dup"] += 1
        if root in seen:
            continue
        seen.add(root)
        if root in content_roots:
            out["tp"] += 1
            matched_content.add(root)
        if root in strict_roots:
            out["tp_strict"] += 1
    if truth.content is not None:
        out["content_records"] = len(kept)
        out["content"] = len(content_roots)
        out["content_found"] = len(matched_content)
        out["content_strict"] = len(strict_roots)
        out["content_strict_found"] = len(matched_content & strict_roots)
    for pair in truth.captions:
        root = pics.find(pair.picture)
        texts, credit = [], None
        for ref in kept:
            if pics.find(ref.url) == root:
                texts += [t for t, o in ref.candidates if o == "figcaption"]
                credit = credit or ref.credit
        out["pairs"] += 1
        out["pairs_found"] += T.caption_recovered(pair.text, texts, credit)
    if truth.lead:
        out["lead_pages"] += 1
        leads = [r for r in kept if getattr(r, "role", None) == "lead"]
        out["lead_ok"] += len(leads) == 1 and pics.same(leads[0].url, truth.lead)
        out["lead_found"] += any(pics.same(r.url, truth.lead) for r in kept)
    return out


def run(pages: list[T.Page], impl, *, repeats: int) -> tuple[dict, list]:
    per_set: dict[str, dict] = defaultdict(lambda: defaultdict(float))
    times: dict[str, list[float]] = defaultdict(list)
    details = []
    for page in pages:
        truth = T.page_truth(page)
        cpu = []
        for _ in range(repeats):
            start = time.process_time()
            refs = impl(page.url, page.body)
            cpu.append((time.process_time() - start) * 1000)
        counts = score_page(truth, refs)
        ms = statistics.median(cpu)
        for key in (page.set, "overall"):
            for name, value in counts.items():
                per_set[key][name] += value
            per_set[key]["pages"] += 1
            times[key].append(ms)
        details.append((page, truth, refs, counts))
    for key, values in times.items():
        values.sort()
        per_set[key]["cpu_median"] = statistics.median(values)
        per_set[key]["cpu_p95"] = values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))]
        per_set[key]["cpu_mean"] = statistics.fmean(values)
    return per_set, details


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.3f}" if b else "-"


def table(per_set: dict) -> list[str]:
    head = ("set", "pages", "records", "content P", "content R", "P strict", "R strict", "caption R (pairs)",
            "self-URL", "non-image", "size dup", "lead marked", "lead among records", "CPU-ms median", "p95")
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key in (*T.SETS, "overall"):
        s = per_set.get(key)
        if not s:
            continue
        rec = s["records"]
        has_content = "content" in s and s["content"]
        rows.append("| " + " | ".join([
            key, f"{int(s['pages'])}", f"{int(rec)}",
            _ratio(s["tp"], s["content_records"]) if has_content else "-",
            _ratio(s["content_found"], s["content"]) if has_content else "-",
            _ratio(s["tp_strict"], s["content_records"]) if has_content else "-",
            _ratio(s["content_strict_found"], s["content_strict"]) if has_content else "-",
            f"{_ratio(s['pairs_found'], s['pairs'])} ({int(s['pairs'])})",
            _ratio(s["self_url"], rec), _ratio(s["non_image"], rec), _ratio(s["size_dup"], rec),
            f"{_ratio(s['lead_ok'], s['lead_pages'])} ({int(s['lead_pages'])})",
            _ratio(s["lead_found"], s["lead_pages"]),
            f"{s['cpu_median']:.2f}", f"{s['cpu_p95']:.2f}"]) + " |")
    return rows


def misses(details, limit: int) -> None:
    """Print the worst pages: bad records, missed content pictures, missed caption pairs."""
    shown = 0
    for page, truth, refs, counts in details:
        bad = counts["self_url"] + counts["non_image"] + counts["size_dup"]
        fp = counts["records"] - counts["tp"] if truth.content is not None else 0
        miss = counts.get("content", 0) - counts.get("content_found", 0)
        cap_miss = counts["pairs"] - counts["pairs_found"]
        if not (bad or fp or miss or cap_miss):
            continue
        print(f"\n## {page.set}/{page.name}  bad={bad} fp={fp} missed={miss} captions_missed={cap_miss}")
        pics = truth.pictures
        roots = {pics.find(u) for u in [*(truth.content or []), truth.lead] if u}
        for ref in refs:
            mark = "+" if pics.find(ref.url) in roots else "-"
            print(f"  {mark} {getattr(ref, 'role', None)} {ref.url[:150]} {[o for _, o in ref.candidates]}")
        found = {pics.find(r.url) for r in refs}
        for url in truth.content or []:
            if pics.find(url) not in found:
                print(f"  MISSED {url[:150]}")
        for pair in truth.captions:
            print(f"  pair {pair.picture[:100]} :: {pair.text[:100]}")
        shown += 1
        if shown >= limit:
            return


def cpu_per_page(pages: list[T.Page], impl, *, repeats: int) -> dict[str, float]:
    """{"median": ms, "p95": ms, "mean": ms} of the per-page median over `repeats` runs (no truth work)."""
    for page in pages[:20]:
        impl(page.url, page.body)
    per_page = []
    for page in pages:
        cpu = []
        for _ in range(repeats):
            start = time.process_time()
            impl(page.url, page.body)
            cpu.append((time.process_time() - start) * 1000)
        per_page.append(statistics.median(cpu))
    per_page.sort()
    return {"median": statistics.median(per_page), "p95": per_page[int(0.95 * (len(per_page) - 1))],
            "mean": statistics.fmean(per_page)}


def _demo_pages(articles: int, path: Path) -> Path:
    """This checkout's demo-site article pages (what the crawl benchmark parses), as JSON lines."""
    from crawlers.demo import generate_site

    site = generate_site(articles=articles, seed=0, photo_size="small")
    base = "http://127.0.0.1:8800"
    with path.open("w") as out:
        for article in site.plan.articles:
            status, _headers, body = site.response(article.path, base_url=base)
            if status == 200:
                out.write(json.dumps({"url": base + article.path, "body": body.decode("utf-8")}) + "\n")
    return path


def _pages_from_file(path: Path) -> list[T.Page]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return [T.Page("demo", str(i), d["url"], d["body"].encode("utf-8")) for i, d in enumerate(lines)]


def compare_cpu(args) -> None:
    import subprocess
    import tempfile

    runs: dict[str, list[dict]] = {"this": [], "against": []}
    extra = ["--fixtures", str(args.fixtures), "--sets", *args.sets]
    if args.demo:
        extra = ["--pages-file", str(_demo_pages(args.demo, Path(tempfile.mkdtemp()) / "pages.jsonl"))]
    for _ in range(args.rounds):
        for side, src in (("this", REPO), ("against", args.against)):
            cmd = [sys.executable, str(Path(__file__).resolve()), "--cpu-only", "--src", str(src), "--repeats",
                   str(args.repeats), *extra]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=src).stdout
            runs[side].append(json.loads(out.strip().splitlines()[-1]))
    pages = f"demo site, {args.demo} articles" if args.demo else "fixture pages"
    print(f"{pages}: rounds={args.rounds} repeats={args.repeats} load={os.getloadavg()[0]:.1f} "
          f"against={args.against}")
    print("| code | CPU-ms per page, median (rounds) | p95 | mean |")
    print("|---|---|---|---|")
    med = {}
    for side in ("this", "against"):
        values = [r["median"] for r in runs[side]]
        med[side] = statistics.median(values)
        print(f"| {side} | {med[side]:.2f} ({', '.join(f'{v:.2f}' for v in values)}) | "
              f"{statistics.median(r['p95'] for r in runs[side]):.2f} | "
              f"{statistics.median(r['mean'] for r in runs[side]):.2f} |")
    print(f"ratio this/against (median CPU per page): {med['this'] / med['against']:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fixtures", type=Path, default=Path(os.environ.get("MMPIPE_FIXTURES",
                                                                        REPO.parent / "shared" / "fixtures")))
    ap.add_argument("--sets", nargs="*", default=list(T.SETS), choices=T.SETS)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--impl", default="ours")
    ap.add_argument("--misses", type=int, default=0, help="print the N worst pages")
    ap.add_argument("--json", type=Path, help="write the per-set figures as JSON")
    ap.add_argument("--metadata", action="store_true", help="compare og/JSON-LD parsing: ours against extruct")
    ap.add_argument("--against", type=Path, help="another checkout: compare CPU per page, interleaved")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--cpu-only", action="store_true", help=argparse.SUPPRESS)  # one side of --against
    ap.add_argument("--src", type=Path, help=argparse.SUPPRESS)  # import crawlers from this checkout
    ap.add_argument("--demo", type=int, default=0, help="with --against: time this checkout's demo-site article "
                                                       "pages (N articles, the crawl benchmark's pages) instead")
    ap.add_argument("--pages-file", type=Path, help=argparse.SUPPRESS)  # pages as JSON lines, for --cpu-only
    args = ap.parse_args()
    if args.src:
        sys.path.insert(0, str(args.src.resolve()))
    if args.against:
        compare_cpu(args)
        return
    if args.cpu_only:
        pages = _pages_from_file(args.pages_file) if args.pages_file else T.load_pages(args.fixtures, tuple(args.sets))
        print(json.dumps(cpu_per_page(pages, implementations()[args.impl], repeats=args.repeats)))
        return
    impls = implementations()
    pages = T.load_pages(args.fixtures, tuple(args.sets))
    if args.metadata:
        from benchmarks.extract_alternatives import metadata_comparison

        print("\n".join(metadata_comparison(pages, repeats=args.repeats)))
        return
    for page in pages[:20]:  # warm imports and caches before timing
        impls[args.impl](page.url, page.body)
    per_set, details = run(pages, impls[args.impl], repeats=args.repeats)
    print(f"impl={args.impl} pages={len(pages)} repeats={args.repeats} load={os.getloadavg()[0]:.1f}")
    print("\n".join(table(per_set)))
    if args.misses:
        misses(details, args.misses)
    if args.json:
        args.json.write_text(json.dumps({k: dict(v) for k, v in per_set.items()}, indent=1))


if __name__ == "__main__":
    main()
