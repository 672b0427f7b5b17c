"""A changed parameter an incremental run cannot apply refuses (naming it and --rebuild) or rebuilds; a dataset of
the old layout is read and migrated by the next run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from clean_planted import seed_blocklist
from clean_rawdata import jpeg, photo, raw_row, write_raw

from data_schemas import Blocklist, Manifest, layout
from pipeline.clean import clean
from pipeline.config import CleanConfig
from pipeline.inputs import CleanError
from pipeline.tools import verify_dataset

pytestmark = pytest.mark.slow  # the real stage on a real Dask cluster


def _config(raw, out, address, **kw) -> CleanConfig:
    return CleanConfig(raw=raw, out=out, scheduler=address, progress=False, **kw)


def _keys(out: Path) -> dict[str, str]:
    m = Manifest.read(out)
    return {k: s for shard in m.shards
            for k, s in zip(*pq.read_table(out / shard.name, columns=["key", "split"]).to_pydict().values(),
                            strict=True)}


def test_a_changed_split_or_filter_refuses_then_rebuilds(planted, dask_address, tmp_path) -> None:
    out = tmp_path / "ds"
    seed_blocklist(out, planted)
    clean(_config(planted.raw, out, dask_address, val_fraction=0.05))
    first, first_keys = Manifest.read(out), set(_keys(out))
    before = layout.manifest_path(out).read_bytes()
    with pytest.raises(CleanError) as err:  # the same inputs: an incremental run would log "nothing new"
        clean(_config(planted.raw, out, dask_address, val_fraction=0.5, min_side=100))
    message = str(err.value)
    assert "val_fraction 0.05 -> 0.5" in message and "min_side 200 -> 100" in message and "--rebuild" in message
    assert layout.manifest_path(out).read_bytes() == before  # nothing was touched
    clean(_config(planted.raw, out, dask_address, val_fraction=0.05, shard_rows=7))  # layout only: no refusal
    assert layout.manifest_path(out).read_bytes() == before

    clean(_config(planted.raw, out, dask_address, val_fraction=0.5, rebuild=True))
    second = Manifest.read(out)
    assert second.parameters["val_fraction"] == 0.5
    assert second.extra["rebuilt"]["changed"] == {"val_fraction": [0.05, 0.5]}
    assert second.rows_out == first.rows_out and set(_keys(out)) == first_keys and first_keys
    assert second.per_split.get("val", 0) > first.per_split.get("val", 0)
    assert second.per_split == {s: list(_keys(out).values()).count(s) for s in second.per_split}
    assert len(second.extra["runs"]) == 1 and second.extra["runs"][0]["run"] == 1  # numbering goes on
    listed = {s.name for s in second.shards} | set(second.extra["index"])
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.suffix in (".parquet", ".pq")}
    assert on_disk == listed and not ({s.name for s in first.shards} & listed)  # the old version is gone
    assert Blocklist.load(out).domains == planted.blocklist.domains  # the dataset's records stay
    assert verify_dataset(out).ok


def test_a_rebuild_refuses_when_an_input_is_gone(planted, dask_address, tmp_path) -> None:
    raw = tmp_path / "raw"
    shutil.copytree(planted.raw, raw)
    out = tmp_path / "ds"
    clean(_config(raw, out, dask_address))
    (raw / "part-1.parquet").unlink()
    with pytest.raises(CleanError, match="cannot rebuild: 1 RAW input"):
        clean(_config(raw, out, dask_address, rebuild=True))


def _to_legacy_layout(out: Path) -> None:
    """Rewrite a dataset as mmpipe wrote it before the `_` layout (manifest.json, index/*.parquet, ...)."""
    m = Manifest.read(out)
    for key, folder in (("index", "index"), ("rejected", "rejected")):
        names = []
        for name in m.extra[key]:
            old = f"{folder}/{Path(name).stem}.parquet"
            (out / old).parent.mkdir(exist_ok=True)
            (out / name).rename(out / old)
            names.append(old)
        m.extra[key] = names
    (out / layout.BLOCKLIST_NAME).rename(out / "blocklist.jsonl")
    (out / layout.MANIFEST_NAME).unlink()
    (out / "manifest.json").write_text(json.dumps(m.to_dict()))
    for folder in (layout.INDEX_DIR, layout.REJECTED_DIR):
        shutil.rmtree(out / folder)


def test_an_old_layout_dataset_is_read_and_migrated_by_the_next_run(planted, dask_address, tmp_path) -> None:
    out = tmp_path / "ds"
    seed_blocklist(out, planted)
    clean(_config(planted.raw, out, dask_address, write_rejected=True))
    rows = Manifest.read(out).rows_out
    _to_legacy_layout(out)
    assert Manifest.read(out).rows_out == rows and verify_dataset(out).ok  # still read as it is
    assert Blocklist.load(out).domains == planted.blocklist.domains
    write_raw(tmp_path / "raw2" / "new.parquet", [raw_row(7001, jpeg(photo(7001)), "A new picture of the quay")])
    clean(_config([*sorted(planted.raw.glob("*.parquet")), tmp_path / "raw2" / "new.parquet"], out, dask_address,
                  write_rejected=True))
    m = Manifest.read(out)
    assert m.rows_out == rows + 1 and len(m.extra["index"]) == 2
    assert all(n.startswith((layout.INDEX_DIR + "/", layout.REJECTED_DIR + "/")) for n in
               [*m.extra["index"], *m.extra["rejected"]])
    for legacy in ("manifest.json", "blocklist.jsonl", "index", "rejected"):
        assert not (out / legacy).exists(), legacy
    assert Blocklist.load(out).domains == planted.blocklist.domains
    assert duckdb.connect().execute("SELECT count(*) FROM read_parquet(?)", [f"{out}/**/*.parquet"]).fetchone() == \
        (rows + 1,)
    assert verify_dataset(out).ok
