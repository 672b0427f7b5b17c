"""Kill -9 during a clean into an ``s3://`` dataset (a real S3-compatible server on loopback): the previous version
stays complete and readable, and the next run completes the new one, byte for byte the local result."""

from __future__ import annotations

from pathlib import Path

import pytest
from faultlib import dataset_state, run_killed_at

from data_schemas import MANIFEST_NAME, Manifest, storage
from pipeline.clean import clean
from pipeline.config import CleanConfig
from tests.faults.test_kill_resume import two_runs

pytestmark = pytest.mark.slow


def _upload(local: Path, url: str) -> str:
    storage.upload_tree(local, url)
    return url


def remote_state(url: str) -> dict:
    """`faultlib.dataset_state` of a remote dataset: its manifest and every listed file's sha256, and no
    shard-like object that the manifest does not list."""
    manifest = Manifest.read(url).to_dict()
    manifest.pop("created_at")
    for run in manifest["extra"].get("runs", []):
        run.pop("created_at", None)
    for record in manifest["inputs"]:
        record.pop("path")  # local and remote runs read the same bytes under different names
    manifest["extra"].pop("runs", None)
    names = [s["name"] for s in manifest["shards"]] + manifest["extra"].get("index", []) \
        + manifest["extra"].get("rejected", [])
    fs, root = storage.filesystem(url)
    present = {k[len(root) + 1:] for k in fs.find(root)}
    unlisted = {k for k in present if k.endswith(".parquet") and k not in names}
    from data_schemas import file_sha256

    return {"manifest": manifest, "files": {n: file_sha256(storage.join(url, n)) for n in names},
            "unlisted": sorted(unlisted), "hidden": sorted(k for k in present if k.rsplit("/", 1)[-1][0] == ".")}


def _script(raw: str, out: str, scheduler: str) -> str:
    return ("from pipeline.clean import clean; from pipeline.config import CleanConfig; "
            f"clean(CleanConfig(raw={raw!r}, out={out!r}, scheduler={scheduler!r}, progress=False, "
            "write_rejected=True))")


@pytest.fixture(scope="module")
def s3_runs(dask_address, s3_server, tmp_path_factory):
    """(raw1, raw2, the local dataset after run 1, the local dataset after run 2)."""
    return two_runs(tmp_path_factory.mktemp("s3clean"), dask_address)


def _normalised(local_state: dict) -> dict:
    local_state["manifest"]["extra"].pop("runs", None)
    for record in local_state["manifest"]["inputs"]:
        record.pop("path")
    return local_state


def test_clean_from_and_into_s3_writes_the_local_bytes(s3_runs, s3_bucket, dask_address):
    raw1, raw2, _first, straight = s3_runs
    out = f"{s3_bucket}/clean/ds"
    for raw in (raw1, raw2):
        url = _upload(raw, f"{s3_bucket}/{raw.name}")
        assert clean(CleanConfig(raw=url, out=out, scheduler=dask_address, progress=False,
                                 write_rejected=True)) == out
    got = remote_state(out)
    assert not got["unlisted"] and not got["hidden"], got
    assert {k: got[k] for k in ("manifest", "files")} == _normalised(dataset_state(straight))
    paths = [i["path"] for i in Manifest.read(out).inputs]
    assert paths == [f"{s3_bucket}/raw1/a.parquet", f"{s3_bucket}/raw2/b.parquet"]


# each name is passed twice when it is also written into the local work dir first: @2 is its upload
@pytest.mark.parametrize("point", ["clean.swap", "publish:part-00001.parquet@2", "published:train-00001.parquet",
                                   "publish:r00001-duplicates.parquet@2", "publish:manifest.json@2"])
def test_s3_clean_killed_at_a_commit_keeps_the_previous_version_and_resumes(s3_runs, s3_bucket, dask_address,
                                                                            tmp_path, point):
    raw1, raw2, first, straight = s3_runs
    out = f"{s3_bucket}/ds"
    _upload(first, out)
    raw_url = _upload(raw2, f"{s3_bucket}/raw2")
    before = storage.read_bytes(storage.join(out, MANIFEST_NAME))
    run_killed_at(_script(raw_url, out, dask_address), point, cwd=tmp_path)
    # a reader still finds the previous version, whole
    assert storage.read_bytes(storage.join(out, MANIFEST_NAME)) == before
    for shard in Manifest.read(out).shards:
        assert storage.size(storage.join(out, shard.name)) == shard.bytes, shard.name
    clean(CleanConfig(raw=raw_url, out=out, scheduler=dask_address, progress=False, write_rejected=True))
    got = remote_state(out)
    assert not got["unlisted"] and not got["hidden"], got
    assert {k: got[k] for k in ("manifest", "files")} == _normalised(dataset_state(straight))
