"""Reading URL lists row by row: every format, img2dataset's columns, provenance, and each kind of bad row."""

from __future__ import annotations

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crawlers.urllist import MAX_PROVENANCE_CHARS, Columns, ListError, ListRow, Reject, host_shard, read_list
from data_schemas import reasons as R

ROWS = [{"url": "http://a.example/1.jpg", "caption": "one", "similarity": "0.3"},
        {"url": "https://b.example/2.jpg", "caption": "", "similarity": "0.4"}]


def _write(tmp_path, fmt: str):
    if fmt == "parquet":
        path = tmp_path / "l.parquet"
        pq.write_table(pa.Table.from_pylist(ROWS), path)
    elif fmt in ("csv.gz", "tsv"):
        sep = "\t" if fmt == "tsv" else ","
        text = f"url{sep}caption{sep}similarity\n" + "".join(
            sep.join([r["url"], r["caption"], r["similarity"]]) + "\n" for r in ROWS)
        path = tmp_path / f"l.{fmt}"
        path.write_bytes(gzip.compress(text.encode()) if fmt.endswith(".gz") else text.encode())
    else:
        path = tmp_path / "l.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return path


@pytest.mark.parametrize("fmt", ["parquet", "csv.gz", "tsv", "jsonl"])
def test_every_format_gives_the_same_rows_with_the_other_columns_as_provenance(tmp_path, fmt):
    rows = list(read_list(_write(tmp_path, fmt), Columns()))
    assert rows == [ListRow("http://a.example/1.jpg", "one", "", json.dumps({"similarity": "0.3"})),
                    ListRow("https://b.example/2.jpg", None, "", json.dumps({"similarity": "0.4"}))]


def test_named_columns_and_a_page_column(tmp_path):
    path = tmp_path / "l.jsonl"
    path.write_text(json.dumps({"URL": "http://a.example/x.jpg", "TEXT": "t", "src": "http://a.example/p"}) + "\n")
    [row] = read_list(path, Columns(url="URL", caption="TEXT", page="src"))
    assert (row.url, row.caption, row.page_url, row.provenance) == ("http://a.example/x.jpg", "t",
                                                                      "http://a.example/p", None)


def test_a_parquet_url_column_of_the_wrong_type_rejects_each_row_naming_it(tmp_path):
    path = tmp_path / "l.parquet"
    pq.write_table(pa.table({"url": [1, 2], "caption": ["a", "b"]}), path)
    rejects = list(read_list(path, Columns()))
    assert [(r.where, r.reason) for r in rejects] == [(f"{path}:1", R.LIST_BAD_ROW), (f"{path}:2", R.LIST_BAD_ROW)]
    assert "int" in rejects[0].detail


def test_a_ragged_csv_row_is_rejected_and_its_neighbours_kept(tmp_path):
    path = tmp_path / "l.csv"
    path.write_text("url,caption\nhttp://a.example/1.jpg,a\nhttp://a.example/2.jpg,b,extra\nhttp://a.example/3.jpg,c\n")
    out = list(read_list(path, Columns()))
    assert [type(r) for r in out] == [ListRow, Reject, ListRow] and out[1].where == f"{path}:2"


def test_huge_provenance_is_cut_to_the_columns_that_fit(tmp_path):
    path = tmp_path / "l.jsonl"
    path.write_text(json.dumps({"url": "http://a.example/1.jpg", "blob": "x" * (2 * MAX_PROVENANCE_CHARS),
                                "uid": "u1"}) + "\n")
    [row] = read_list(path, Columns())
    assert json.loads(row.provenance) == {"uid": "u1", "_cut": True}


def test_unreadable_inputs_name_the_file(tmp_path):
    bad = tmp_path / "l.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(ListError, match="l.parquet: not a readable Parquet"):
        list(read_list(bad, Columns()))
    with pytest.raises(ListError, match="cannot tell the format"):
        list(read_list(tmp_path / "l.xyz", Columns()))


def test_hosts_split_over_shards_and_a_host_stays_in_one():
    urls = [f"http://h{i}.example/{j}.jpg" for i in range(40) for j in range(3)]
    shards = {}
    for u in urls:
        shards.setdefault(u.split("/")[2], set()).add(host_shard(u, 4))
    assert all(len(s) == 1 for s in shards.values()) and {next(iter(s)) for s in shards.values()} == {0, 1, 2, 3}
