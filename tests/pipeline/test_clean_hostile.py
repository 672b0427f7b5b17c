"""The clean stage against hostile data and a hostile cache (issue 16): ids that would name files elsewhere, skip
messages that keep the column they are about, and a language-model cache that must never run code."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_schemas import RAW_SCHEMA, Blocklist, Manifest, reasons
from pipeline.clean import clean
from pipeline.config import CleanConfig
from pipeline.rows import row_reason
from tests.pipeline.clean_rawdata import jpeg, photo, raw_row, write_raw


@pytest.mark.parametrize("bad_id", ["../../x", "a/b", ".hidden", "x.jpg", "", "k" * 129, "a b", "-rf"])
def test_an_unsafe_raw_id_is_dropped_with_a_reason(bad_id):
    row = {**raw_row(1, jpeg(photo(1, (400, 300))), "A view of the river bank at noon"), "id": bad_id}
    assert row_reason(row, CleanConfig(raw=".", out="."), Blocklist()) == reasons.INVALID_ID


@pytest.mark.slow
def test_unsafe_ids_cost_their_row_only_and_never_become_keys(dask_address, tmp_path: Path, caplog) -> None:
    rows = [raw_row(i, jpeg(photo(i, (400, 300))), f"A view of the river bank number {i} at noon") for i in range(4)]
    rows[1]["id"] = "../../escaped"
    write_raw(tmp_path / "raw" / "a.parquet", rows)
    # a file whose `http_status` has the wrong type: skipped, and the message says which column
    bad = pa.Table.from_pylist(rows[:1], schema=RAW_SCHEMA).set_column(
        RAW_SCHEMA.get_field_index("http_status"), "http_status", pa.array(["200"], pa.string()))
    pq.write_table(bad, tmp_path / "raw" / "b.parquet")
    with caplog.at_level(logging.ERROR, logger="pipeline.clean"):
        out = clean(CleanConfig(raw=tmp_path / "raw", out=tmp_path / "ds", scheduler=dask_address, progress=False))
    manifest = Manifest.read(out)
    assert manifest.drops == {reasons.INVALID_ID: 1} and manifest.rows_out == 3
    keys = {k for s in manifest.shards for k in pq.read_table(out / s.name, columns=["key"]).column("key").to_pylist()}
    assert "../../escaped" not in keys and len(keys) == 3
    [skipped] = manifest.extra["skipped_inputs"]
    assert skipped["path"].endswith("b.parquet") and "column 'http_status'" in skipped["reason"]
    assert "column 'http_status'" in caplog.text and "b.parquet" in caplog.text


def test_the_language_model_cache_never_unpickles(tmp_path, monkeypatch):
    """A cache directory others can write (a shared home, a container image) must not be able to run code in the
    clean stage's workers: the cache is plain arrays, read without pickle, and rebuilt when it is not."""
    from importlib.metadata import version

    from pipeline.captions import _LangId

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    cache = tmp_path / "mmpipe"
    cache.mkdir()
    evil = pickle.dumps(Payload())
    for name in (f"py3langid-{version('py3langid')}-normprobs.pickle", f"py3langid-{version('py3langid')}-model.npz"):
        (cache / name).write_bytes(evil)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    model = _LangId._load()
    assert not marker.exists(), "the cache ran code"
    assert model.rank("Ein Hund läuft über die nasse Wiese im Park")[0][0] == "de"
    again = _LangId._load()  # from the rebuilt cache
    assert again.rank("A crowd gathers near the harbour on a windy afternoon")[0][0] == "en"
