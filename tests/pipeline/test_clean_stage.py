"""End to end on a real Dask cluster: funnel, output contract, determinism, incremental runs, bad inputs."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from data_schemas import CLEAN_SCHEMA, RAW_SCHEMA, Manifest, SchemaError, file_sha256, reasons, validate
from pipeline.clean import clean
from pipeline.config import CleanConfig
from pipeline.inputs import CleanError
from pipeline.signals import HASH_VERSION
from tests.pipeline.clean_planted import planted_rows, seed_blocklist
from tests.pipeline.clean_rawdata import jpeg, photo, raw_row, write_raw

pytestmark = pytest.mark.slow  # every test here runs the real stage on a real Dask cluster


def _config(raw, out, address, **kw) -> CleanConfig:
    return CleanConfig(raw=raw, out=out, scheduler=address, progress=False, **kw)


def _shard_rows(out: Path) -> pa.Table:
    manifest = Manifest.read(out)
    return pa.concat_tables([pq.read_table(out / s.name) for s in manifest.shards])


@pytest.fixture(scope="module")
def dataset(planted, dask_address, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ds") / "clean"
    seed_blocklist(out, planted)
    return clean(_config(planted.raw, out, dask_address, write_rejected=True, shard_rows=15, row_group_rows=4))


def test_funnel_matches_the_planted_truth(dataset: Path, planted) -> None:
    m = Manifest.read(dataset)
    assert m.rows_in == len(planted.rows)
    assert m.drops == dict(planted.funnel)
    assert m.rows_out == len(planted.kept_captions) == m.rows_in - sum(m.drops.values())
    assert sum(m.per_split.values()) == m.rows_out == sum(s.rows for s in m.shards)
    assert m.per_source == {"demo-news": m.rows_out}
    run = m.extra["runs"][0]
    assert (run["rows_in"], run["drops"], run["rows_out"]) == (m.rows_in, m.drops, m.rows_out)
    assert m.extra["skipped_inputs"] == []


def test_output_follows_the_clean_contract(dataset: Path, planted) -> None:
    m = Manifest.read(dataset)
    for shard in m.shards:
        path = dataset / shard.name
        assert shard.name.startswith(f"shards/{shard.split}-") and file_sha256(path) == shard.sha256
        assert path.stat().st_size == shard.bytes
        table = validate(path, CLEAN_SCHEMA)
        assert set(table.column("split").to_pylist()) == {shard.split}
        meta = pq.ParquetFile(path).metadata
        assert meta.num_rows == shard.rows <= 15
        assert all(meta.row_group(i).num_rows == 4 for i in range(meta.num_row_groups - 1))
        assert meta.row_group(0).column(0).compression == "ZSTD"
    rows = _shard_rows(dataset).to_pylist()
    assert {r["key"]: r["caption"] for r in rows} == planted.kept_captions
    for r in rows:
        img = Image.open(io.BytesIO(r["image"]))
        assert img.format == "JPEG" and img.size == (r["width"], r["height"]) and not img.getexif()
        assert max(img.size) <= 512 and r["dup_cluster"] == r["key"]
    credit = next(r for r in rows if r["caption"] == "Crowds gather in the main square.")
    assert credit["credit"] == "Jane Doe/Reuters" and credit["lang"] == "en"
    index = pq.read_table(dataset / m.extra["index"][0])
    assert sorted(index.column("key").to_pylist()) == sorted(planted.kept_captions)


def test_rejected_rows_are_recorded_with_their_reason(dataset: Path, planted) -> None:
    m = Manifest.read(dataset)
    tables = [pq.read_table(dataset / name) for name in m.extra["rejected"]]
    got = {}
    for t in tables:
        for rec in t.select(["id", "reason"]).to_pylist():
            got[rec["id"]] = rec["reason"]
    assert len(got) == sum(planted.funnel.values())
    counts = {}
    for reason in got.values():
        counts[reason] = counts.get(reason, 0) + 1
    assert counts == dict(planted.funnel)


def test_same_inputs_give_identical_shards_on_any_cluster_size(dataset: Path, planted, tmp_path: Path) -> None:
    out = tmp_path / "again"
    seed_blocklist(out, planted)
    # a LocalCluster started by the stage itself, with one worker instead of two
    clean(CleanConfig(raw=planted.raw, out=out, n_workers=1, progress=False, write_rejected=True, shard_rows=15,
                      row_group_rows=4))
    a, b = Manifest.read(dataset), Manifest.read(out)
    assert [(s.name, s.sha256) for s in a.shards] == [(s.name, s.sha256) for s in b.shards]
    for s in a.shards:
        assert (dataset / s.name).read_bytes() == (out / s.name).read_bytes()


def test_incremental_run_adds_only_new_rows(planted, dask_address, tmp_path: Path) -> None:
    out = tmp_path / "inc"
    seed_blocklist(out, planted)
    clean(_config(planted.raw, out, dask_address))
    first = Manifest.read(out)
    for name in first.extra["index"]:  # the first run's index as older versions wrote it: with a stored pixel_hash
        index = pq.read_table(out / name)
        pix = pa.array([bytes.fromhex(h)[:16] for h in index.column("sha256").to_pylist()], pa.binary(16))
        pq.write_table(index.append_column("pixel_hash", pix), out / name)
    old_bytes = {s.name: (out / s.name).read_bytes() for s in first.shards}
    old_kept = [r for r in planted.rows if r["id"] in planted.kept_captions]
    new_rows = planted_rows(start=500, n_good=6)[0][:6]  # six new distinct photos ...
    new_rows.append(raw_row(9001, old_kept[3]["image_bytes"], "The old harbour picture crawled again today"))
    new_rows.append(raw_row(9002, jpeg(Image.open(io.BytesIO(old_kept[4]["image_bytes"])), 55),
                            "A recompressed copy of an old harbour picture"))
    write_raw(tmp_path / "raw2" / "new.parquet", new_rows)
    clean(_config([*sorted(planted.raw.glob("*.parquet")), tmp_path / "raw2" / "new.parquet"], out, dask_address))
    second = Manifest.read(out)
    run = second.extra["runs"][-1]
    assert run["rows_in"] == 8 and run["rows_out"] == 6
    assert run["drops"] == {reasons.DUPLICATE_PREVIOUS_RUN: 2}
    assert len(run["already_ingested"]) == 2  # the first run's files are not read again
    assert second.rows_in == first.rows_in + 8 and second.rows_out == first.rows_out + 6
    assert second.drops[reasons.DUPLICATE_PREVIOUS_RUN] == 2
    assert second.shards[: len(first.shards)] == first.shards
    assert all((out / n).read_bytes() == b for n, b in old_bytes.items())
    keys = _shard_rows(out).column("key").to_pylist()
    assert len(keys) == len(set(keys)) == second.rows_out
    assert set(keys) >= {r["id"] for r in new_rows[:6]}
    assert len(second.extra["index"]) == 2
    # a third run on the same inputs changes nothing
    before = (out / "_manifest.json").read_bytes()
    clean(_config(planted.raw, out, dask_address))
    assert (out / "_manifest.json").read_bytes() == before


def test_bad_inputs_are_reported_by_name_and_skipped_or_fatal(planted, dask_address, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    good = write_raw(raw / "a-good.parquet", [raw_row(i, jpeg(photo(i)), f"A good harbour picture {i}")
                                              for i in range(3)])
    (raw / "b-garbage.parquet").write_bytes(b"PAR1 this is not parquet at all")
    pq.write_table(pa.table({"x": [1, 2]}), raw / "c-wrong-schema.parquet")
    bad_kind = pa.Table.from_pylist([{**raw_row(7, jpeg(photo(7))), "source_kind": "myspace"}], schema=RAW_SCHEMA)
    pq.write_table(bad_kind, raw / "d-bad-values.parquet")
    out = clean(_config(raw, tmp_path / "out", dask_address))
    m = Manifest.read(out)
    skipped = {Path(s["path"]).name: s["reason"] for s in m.extra["skipped_inputs"]}
    assert set(skipped) == {"b-garbage.parquet", "c-wrong-schema.parquet", "d-bad-values.parquet"}
    assert "source_kind" in skipped["d-bad-values.parquet"] and "missing" in skipped["c-wrong-schema.parquet"]
    assert m.rows_in == 3 and m.rows_out == 3 and [i["path"] for i in m.inputs] == [str(good.resolve())]
    with pytest.raises(CleanError, match="b-garbage.parquet"):
        clean(_config(raw, tmp_path / "strict", dask_address, strict=True))
    assert not (tmp_path / "strict").exists() or not any((tmp_path / "strict").iterdir())
    (raw / "b-garbage.parquet").unlink()
    (raw / "c-wrong-schema.parquet").unlink()
    with pytest.raises(CleanError, match="d-bad-values.parquet"):
        clean(_config(raw, tmp_path / "strict", dask_address, strict=True))


def test_out_dir_that_is_not_a_dataset_is_refused(planted, dask_address, tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "notes.txt").write_text("mine")
    with pytest.raises(CleanError, match="holds no dataset"):
        clean(_config(planted.raw, tmp_path / "home", dask_address))
    assert (tmp_path / "home" / "notes.txt").read_text() == "mine"


def test_manifest_is_json_with_parameters(dataset: Path) -> None:
    data = json.loads((dataset / "_manifest.json").read_text())
    defaults = CleanConfig(raw="r", out="o")
    assert data["parameters"]["image_size"] == 512
    assert data["parameters"]["phash_threshold"] == defaults.phash_threshold
    assert data["parameters"]["dedup_hashes"] == HASH_VERSION  # what the index's hashes mean
    assert all(set(i) == {"path", "rows", "bytes", "sha256"} for i in data["inputs"])
    with pytest.raises(SchemaError):
        validate(dataset / "_manifest.json", CLEAN_SCHEMA)


def test_an_index_of_older_hashes_is_refused_then_rehashed(planted, dask_address, tmp_path: Path) -> None:
    """A dataset made before the current near-duplicate hashes (manifest without dedup_hashes, index with pHash
    only) is never compared with new hashes: the run stops naming the flag, and with it the index is re-hashed
    from the stored images, so a mirrored copy of an old picture is recognised."""
    out = tmp_path / "old"
    seed_blocklist(out, planted)
    clean(_config(planted.raw, out, dask_address))
    first = Manifest.read(out)
    del first.parameters["dedup_hashes"]
    first.write(out)
    for name in first.extra["index"]:
        index = pq.read_table(out / name)
        pq.write_table(index.select(["key", "sha256", "phash", "cluster", "split", "run"]), out / name)
    kept = [r for r in planted.rows if r["id"] in planted.kept_captions][2]
    mirrored = Image.open(io.BytesIO(kept["image_bytes"])).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    write_raw(tmp_path / "raw2" / "new.parquet", [raw_row(9100, jpeg(mirrored, 80), "The harbour, mirrored")])
    inputs = [*sorted(planted.raw.glob("*.parquet")), tmp_path / "raw2" / "new.parquet"]
    with pytest.raises(CleanError, match="--rehash-index"):
        clean(_config(inputs, out, dask_address))
    assert Manifest.read(out).rows_in == first.rows_in  # nothing was written
    clean(_config(inputs, out, dask_address, rehash_index=True))
    second = Manifest.read(out)
    assert second.extra["runs"][-1]["drops"] == {reasons.DUPLICATE_PREVIOUS_RUN: 1}
    assert second.parameters["dedup_hashes"] == HASH_VERSION
    index = pa.concat_tables([pq.read_table(out / n) for n in second.extra["index"]])
    assert index.num_rows == first.rows_out and index.column("pdq").null_count == 0
