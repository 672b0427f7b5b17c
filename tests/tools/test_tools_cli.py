"""The CLI commands through typer's CliRunner on `flows.cli.app`: exit codes, key output, clean errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from flows.cli import app


@pytest.fixture
def cli():
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "160"})

    return run


def test_inspect(cli, clean_ds, tmp_path):
    res = cli("inspect", clean_ds.path, "--sample", "3", "--where", "source = 'mastodon'",
              "--html", tmp_path / "r.html", "--grid", tmp_path / "g.png")
    assert res.exit_code == 0, res.output
    assert "12 matching rows" in res.output and "mastodon" in res.output
    assert "Sample (3 rows)" in res.output and "Ein Hund" in res.output
    assert (tmp_path / "r.html").exists() and (tmp_path / "g.png").exists()
    res = cli("inspect", clean_ds.path, "--json")
    data = json.loads(res.output)
    assert data["rows"] == 36 and data["splits"] == {"train": 30, "val": 6}


def test_inspect_errors_are_one_line(cli, tmp_path):
    res = cli("inspect", tmp_path / "nope")
    assert res.exit_code == 1 and "no such file or directory" in res.output and "Traceback" not in res.output


def test_verify_exit_codes(cli, clean_ds):
    res = cli("verify", clean_ds.path)
    assert res.exit_code == 0 and "OK" in res.output
    shard = clean_ds.path / "shards" / "train-00001.parquet"
    shard.write_bytes(shard.read_bytes()[:-100])
    res = cli("verify", clean_ds.path)
    assert res.exit_code == 1 and "FAILED" in res.output and "shards/train-00001.parquet" in res.output


def test_takedown_then_verify_and_export(cli, clean_ds, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text("social.example\n")
    res = cli("takedown", clean_ds.path, "--file", listing, "--url", clean_ds.rows[0]["page_url"],
              "--reason", "test")
    assert res.exit_code == 0, res.output
    assert "removed 13 row(s)" in res.output and "takedowns.jsonl" in res.output
    assert cli("verify", clean_ds.path).exit_code == 0
    res = cli("takedown", clean_ds.path)
    assert res.exit_code == 1 and "nothing to take down" in res.output
    res = cli("takedown", clean_ds.path, "--domain", "http://bad/")
    assert res.exit_code == 1 and "not a domain name" in res.output
    res = cli("export", clean_ds.path, "--format", "webdataset", "--out", tmp_path / "wds", "--split", "train")
    assert res.exit_code == 0, res.output
    assert "exported 17 samples" in res.output  # 30 train rows - 12 mastodon - 1 news-a


def test_export_parquet(cli, clean_ds, tmp_path):
    res = cli("export", clean_ds.path, "--format", "img2dataset-parquet", "--out", tmp_path / "pq",
              "--with-images", "--samples-per-shard", "100")
    assert res.exit_code == 0 and "exported 36 samples in 1 shard(s)" in res.output
    res = cli("export", clean_ds.path, "--format", "csv", "--out", tmp_path / "x")
    assert res.exit_code != 0


def test_markup_in_data_and_input_is_printed_literally(cli, clean_ds):
    res = cli("inspect", clean_ds.path, "--where", "caption LIKE '%[/]%' OR source = '[bold]x'")
    assert res.exit_code == 0, res.output
    assert "source = '[bold]x'" in res.output and "0 matching rows" in res.output
    res = cli("inspect", clean_ds.path, "--where", "list_value(1)[/] = 1")
    assert res.exit_code == 1 and "--where" in res.output and "Traceback" not in res.output


def test_clean_and_export_commands_take_s3_urls(cli, s3_bucket, dask_address, tmp_path):
    """`--raw`/`--out`/DATASET are URLs as typed (a Path option would fold s3:// into s3:/)."""
    from data_schemas import Manifest, storage
    from tests.pipeline.clean_rawdata import jpeg, photo, raw_row, write_raw

    rows = [raw_row(i, jpeg(photo(i, (320, 240))), f"A quiet harbour at dawn, boat number {i}") for i in range(8)]
    storage.upload_tree(write_raw(tmp_path / "raw" / "a.parquet", rows).parent, f"{s3_bucket}/raw")
    res = cli("clean", "--raw", f"{s3_bucket}/raw", "--out", f"{s3_bucket}/clean", "--scheduler", dask_address,
              "--val-fraction", "0")
    assert res.exit_code == 0, res.output
    assert Manifest.read(f"{s3_bucket}/clean").rows_out == 8
    res = cli("export", f"{s3_bucket}/clean", "--format", "webdataset", "--out", f"{s3_bucket}/wds")
    assert res.exit_code == 0, res.output
    assert "exported 8 samples" in res.output
    assert json.loads(storage.read_text(f"{s3_bucket}/wds/export.json"))["samples"] == 8
