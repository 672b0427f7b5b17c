"""The tools people already use, pointed at the dataset folder itself, see exactly the manifest's rows.

A dataset written by the real clean stage, with everything beside the shards that a dataset can hold: the dedup
index, the rejected rows (``write_rejected``), a blocklist and a takedown log.  Each reader must count the
manifest's ``rows_out`` and see its keys, never an auxiliary table's rows (#19: DuckDB counted the index as data,
pandas failed on the manifest).
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from clean_planted import seed_blocklist

from data_schemas import Manifest, layout
from pipeline.clean import clean
from pipeline.config import CleanConfig

pytestmark = pytest.mark.slow  # the real stage on a real Dask cluster


@pytest.fixture(scope="module")
def dataset(planted, dask_address, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("readers") / "clean"
    seed_blocklist(out, planted)
    clean(CleanConfig(raw=planted.raw, out=out, scheduler=dask_address, progress=False, write_rejected=True,
                      shard_rows=15, row_group_rows=4))
    (out / layout.TAKEDOWN_LOG).write_text(json.dumps({"id": "x", "rows_removed": 0}) + "\n")
    return out


def _truth(dataset: Path) -> tuple[int, list[str]]:
    m = Manifest.read(dataset)
    keys = sorted(k for s in m.shards for k in pq.read_table(dataset / s.name, columns=["key"])["key"].to_pylist())
    return m.rows_out, keys


def test_the_dataset_holds_auxiliary_tables_beside_its_shards(dataset):
    """The readers' tests mean something only if there is something for them to wrongly pick up."""
    m = Manifest.read(dataset)
    assert m.extra["index"] and m.extra["rejected"]
    for name in [*m.extra["index"], *m.extra["rejected"]]:
        assert name.startswith(layout.AUX_PREFIX) and name.endswith(layout.AUX_SUFFIX), name
        assert pq.read_metadata(dataset / name).num_rows > 0
    assert (dataset / layout.MANIFEST_NAME).is_file() and not (dataset / "manifest.json").exists()
    assert (dataset / layout.BLOCKLIST_NAME).is_file()
    assert sorted(p.relative_to(dataset).as_posix() for p in dataset.rglob("*.parquet")) == \
        sorted(s.name for s in m.shards)


def test_pandas_reads_the_dataset_folder(dataset):
    rows, keys = _truth(dataset)
    frame = pd.read_parquet(dataset)
    assert len(frame) == rows and sorted(frame["key"]) == keys


def test_pyarrow_dataset_reads_the_dataset_folder(dataset):
    rows, keys = _truth(dataset)
    table = pads.dataset(dataset, format="parquet").to_table(columns=["key"])
    assert table.num_rows == rows and sorted(table["key"].to_pylist()) == keys


def test_duckdb_glob_reads_the_dataset_folder(dataset):
    rows, keys = _truth(dataset)
    con = duckdb.connect()
    got = con.execute("SELECT count(*), list(key ORDER BY key) FROM read_parquet(?)",
                      [f"{dataset}/**/*.parquet"]).fetchone()
    assert got == (rows, keys)


def test_hugging_face_datasets_reads_the_dataset_folder(dataset, tmp_path):
    datasets = pytest.importorskip("datasets", reason="Hugging Face `datasets` is in the dev extras")
    rows, keys = _truth(dataset)
    loaded = datasets.load_dataset("parquet", data_dir=str(dataset), cache_dir=str(tmp_path / "hf"))
    got = sorted(k for split in loaded.values() for k in split["key"])
    assert sum(len(split) for split in loaded.values()) == rows and got == keys
    m = Manifest.read(dataset)
    assert {name: len(split) for name, split in loaded.items()} == \
        {{"val": "validation"}.get(k, k): v for k, v in m.per_split.items() if v}
