"""RAW v2's `role` (lead / body / teaser): carried into CLEAN, selectable by the clean config; RAW v1 files, which
have no role, still clean."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_schemas import CLEAN_SCHEMA, RAW_SCHEMA, Manifest, reasons, validate
from pipeline.clean import clean
from pipeline.config import CleanConfig
from tests.pipeline.clean_rawdata import jpeg, photo, raw_row, write_raw

pytestmark = pytest.mark.slow  # the real stage on a real Dask cluster


def _rows() -> list[dict]:
    rows = []
    for n, role in enumerate(("lead", "body", "teaser", None)):
        row = raw_row(n, jpeg(photo(n)), f"A quiet street in the old town, picture {n}")
        row["role"] = role
        rows.append(row)
    return rows


def _clean_rows(out: Path) -> list[dict]:
    manifest = Manifest.read(out)
    tables = [validate(out / s.name, CLEAN_SCHEMA) for s in manifest.shards]
    return pa.concat_tables(tables).drop(["image"]).to_pylist()


def test_roles_are_carried_and_chosen(tmp_path, dask_address):
    raw = write_raw(tmp_path / "raw" / "a.parquet", _rows())
    out = clean(CleanConfig(raw=raw.parent, out=tmp_path / "all", scheduler=dask_address, progress=False))
    by_url = {r["image_url"]: r["role"] for r in _clean_rows(out)}
    assert sorted(by_url.values(), key=str) == sorted(["lead", "body", "teaser", None], key=str)
    out = clean(CleanConfig(raw=raw.parent, out=tmp_path / "own", scheduler=dask_address, progress=False,
                            roles=["lead", "body"]))
    manifest = Manifest.read(out)
    assert manifest.drops == {reasons.ROLE_NOT_ALLOWED: 1}  # the teaser; the row without a role is kept
    assert sorted((r["role"] for r in _clean_rows(out)), key=str) == sorted(["lead", "body", None], key=str)


def test_a_raw_version_1_file_without_role_still_cleans(tmp_path, dask_address):
    v1 = pa.schema([f for f in RAW_SCHEMA if f.name != "role"],
                   metadata={b"mmpipe.schema": b"raw", b"mmpipe.schema_version": b"1"})
    rows = [{k: v for k, v in row.items() if k != "role"} for row in _rows()]
    path = tmp_path / "raw" / "old.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=v1), path, row_group_size=2)
    validate(path, RAW_SCHEMA)
    out = clean(CleanConfig(raw=path.parent, out=tmp_path / "clean", scheduler=dask_address, progress=False,
                            roles=["lead"]))
    rows_out = _clean_rows(out)
    assert len(rows_out) == 4 and {r["role"] for r in rows_out} == {None}
