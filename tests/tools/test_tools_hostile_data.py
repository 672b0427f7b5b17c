"""The dataset tools against hostile data (issue 16): names that leave the dataset, unsafe keys, a decompression
bomb in the thumbnails, `--where` reaching for files, a blocklist cut by a killed write."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from data_schemas import CLEAN_SCHEMA, RAW_SCHEMA, Manifest, ShardInfo, atomic_write_parquet, file_sha256
from pipeline.tools import TakedownRequest, ToolError, export_dataset, inspect_dataset, takedown, verify_dataset
from tests.pipeline.clean_rawdata import bomb_png
from tests.tools.tools_data import clean_row

REPO = Path(__file__).resolve().parents[2]


def _point_manifest_at(ds: Path, name: str, victim: Path) -> None:
    manifest = Manifest.read(ds)
    s = manifest.shards[0]
    manifest.shards[0] = ShardInfo(name, s.rows, victim.stat().st_size, file_sha256(victim), s.split)
    manifest.write(ds)


@pytest.mark.parametrize("name", ["../victim.parquet", "/tmp/victim.parquet", "shards/../../victim.parquet"])
def test_a_manifest_naming_a_file_outside_the_dataset_is_refused(clean_ds, tmp_path, name):
    victim = tmp_path / "victim.parquet"
    victim.write_bytes((clean_ds.path / "shards" / "train-00000.parquet").read_bytes())
    before = victim.read_bytes()
    _point_manifest_at(clean_ds.path, name, victim)
    with pytest.raises(ToolError, match="leaves the dataset directory|not a relative POSIX path"):
        inspect_dataset(clean_ds.path)
    with pytest.raises(ToolError, match="leaves the dataset directory|not a relative POSIX path"):
        takedown(clean_ds.path, TakedownRequest(domains=["news-a.test", "social.example", "bsky.test"]))
    assert not verify_dataset(clean_ds.path).ok
    assert victim.read_bytes() == before, "a file outside the dataset was rewritten"


def test_a_pending_takedown_naming_a_file_outside_is_refused(clean_ds, tmp_path):
    victim = tmp_path / "victim.parquet"
    victim.write_bytes((clean_ds.path / "shards" / "train-00000.parquet").read_bytes())
    row = clean_ds.shards["shards/train-00000.parquet"][0]
    pending = {"id": "x", "request": {"urls": [row["image_url"]]}, "shards": ["../victim.parquet"],
               "rows": [{"key": row["key"], "shard": "../victim.parquet", "source": row["source"],
                         "split": row["split"]}], "blocklist_added": 0, "rejected": {}}
    (clean_ds.path / "_takedown-pending.json").write_text(json.dumps(pending))
    with pytest.raises(Exception, match="leaves the dataset directory"):
        takedown(clean_ds.path, TakedownRequest())
    assert file_sha256(victim) == file_sha256(clean_ds.path / "shards" / "train-00000.parquet")


def _one_shard(root: Path, rows: list[dict]) -> Path:
    table = pa.Table.from_pylist(rows, schema=CLEAN_SCHEMA)
    path = atomic_write_parquet(root / "shards" / "train-00000.parquet", table)
    Manifest(rows_in=len(rows), rows_out=len(rows), per_split={"train": len(rows)},
             shards=[ShardInfo("shards/train-00000.parquet", len(rows), path.stat().st_size, file_sha256(path),
                               "train")]).write(root)
    return root


def test_an_unsafe_key_never_becomes_a_file_name(tmp_path):
    rows = [{**clean_row(i), "split": "train"} for i in range(3)]
    rows[1]["key"] = "../../escaped"
    ds = _one_shard(tmp_path / "ds", rows)
    with pytest.raises(ToolError, match="not a safe file name"):
        export_dataset(ds, format="webdataset", out=tmp_path / "wds")
    assert not list(tmp_path.rglob("escaped*")) and not list((tmp_path / "wds").rglob("*.tar"))
    report = verify_dataset(ds)
    assert any("unsafe key" in str(p) for p in report.problems), [str(p) for p in report.problems]


def _raw_with_bomb(root: Path) -> Path:
    from tests.tools.tools_data import raw_row

    rows = [raw_row(i) for i in range(3)]
    rows[0].update(image_bytes=bomb_png(13000), image_mime="image/png", http_status=200, fetch_error=None)
    atomic_write_parquet(root / "part-0000.parquet", pa.Table.from_pylist(rows, schema=RAW_SCHEMA))
    return root


def test_thumbnails_never_decode_a_decompression_bomb(tmp_path):
    """A 20 KB PNG declaring 13000x13000 (169 Mpx, ~0.5 GB as RGB): below twice Pillow's default limit, so Pillow
    alone would decode it.  The report shows it without a preview, at the memory of a report without it."""
    raw = _raw_with_bomb(tmp_path / "raw")
    # the peak RSS of this process image (VmHWM; ru_maxrss would carry the forking pytest's own size over exec)
    script = (f"from pipeline.tools import inspect_dataset; r = inspect_dataset({str(raw)!r}, sample=3, "
              f"html={str(tmp_path / 'r.html')!r}, grid={str(tmp_path / 'g.png')!r}); "
              "print([int(x.split()[1]) // 1024 for x in open('/proc/self/status') if x.startswith('VmHWM')][0])")
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    peak_mb = int(proc.stdout.split()[-1])
    assert peak_mb < 400, f"inspect peaked at {peak_mb} MB: the bomb was decoded"
    assert "no preview" in (tmp_path / "r.html").read_text()


@pytest.mark.parametrize("where", [
    "key IN (SELECT content FROM read_text('/etc/hostname'))",
    "(SELECT count(*) FROM read_csv('/etc/passwd')) > 0",
    "exists (SELECT 1 FROM glob('/*'))",
    "getenv('HOME') LIKE '/%'",
    "caption = current_setting('temp_directory')",
])
def test_where_is_a_predicate_over_the_rows_only(clean_ds, where):
    with pytest.raises(ToolError, match="only a predicate over the rows"):
        inspect_dataset(clean_ds.path, where=where)


def test_where_keeps_ordinary_predicates(clean_ds):
    report = inspect_dataset(clean_ds.path, where="lower(source) = 'mastodon' AND length(caption) > 3 "
                                                  "AND list_contains(['de', 'fr'], lang)")
    assert report.matched == 12


def test_verify_reports_a_blocklist_cut_by_an_interrupted_write(clean_ds):
    path = clean_ds.path / "_blocklist.jsonl"
    path.write_text('{"kind": "url", "value": "https://a.test/x.jpg", "reason": "t", "added_at": "2024"}\n'
                    '{"kind": "domain", "value": "news-a.te')
    report = verify_dataset(clean_ds.path)
    assert not report.ok and any("_blocklist.jsonl" in str(p) for p in report.problems)
