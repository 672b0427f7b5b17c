"""A killed run, a half-finished swap, an external `dask scheduler` + `dask worker`, and the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from data_schemas import MANIFEST_NAME, Manifest, file_sha256
from pipeline.clean import clean
from pipeline.config import CleanConfig
from pipeline.dataset import recover
from tests.pipeline.clean_rawdata import jpeg, photo, raw_row, write_raw

REPO = Path(__file__).resolve().parents[2]


def _intact(out: Path, manifest_bytes: bytes) -> None:
    assert (out / MANIFEST_NAME).read_bytes() == manifest_bytes
    manifest = Manifest.read(out)
    for shard in manifest.shards:
        assert file_sha256(out / shard.name) == shard.sha256, shard.name


def _rows(start: int, n: int, size=(640, 480)) -> list[dict]:
    return [raw_row(i, jpeg(photo(i, size)), f"A view of the river bank number {i} at noon") for i in
            range(start, start + n)]


@pytest.mark.slow
def test_killed_run_leaves_the_previous_dataset_intact(dask_address, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    write_raw(tmp_path / "raw1" / "a.parquet", _rows(0, 6))
    clean(CleanConfig(raw=tmp_path / "raw1", out=out, scheduler=dask_address, progress=False))
    before = (out / MANIFEST_NAME).read_bytes()
    big = [jpeg(photo(i, (1400, 1000))) for i in range(4)]  # many rows, cheap to make, slow enough to clean
    rows = [raw_row(i, big[i % 4], f"A view of the river bank number {i} at noon") for i in range(100, 260)]
    write_raw(tmp_path / "raw2" / "b.parquet", rows, row_group_size=10)
    t0 = time.monotonic()
    script = (f"from pipeline.clean import clean; from pipeline.config import CleanConfig; "
              f"clean(CleanConfig(raw={str(tmp_path / 'raw2')!r}, out={str(out)!r}, n_workers=1, "
              f"partition_rows=10, progress=False))")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:  # kill once rows are being staged
            if list(tmp_path.glob(".ds.tmp-*/_staging/part-*.parquet")):
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run finished before it could be killed"
        print(f"killed after {time.monotonic() - t0:.1f} s")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert list(tmp_path.glob(".ds.tmp-*")), "the killed run's build directory should be left behind"
    _intact(out, before)
    # the next run cleans up what the killed one left and completes
    write_raw(tmp_path / "raw3" / "c.parquet", _rows(300, 4))
    clean(CleanConfig(raw=tmp_path / "raw3", out=out, scheduler=dask_address, progress=False))
    assert not list(tmp_path.glob(".ds.tmp-*"))
    assert Manifest.read(out).rows_out == 10


def test_half_swapped_dataset_is_restored(tmp_path: Path) -> None:
    """The two-rename fallback killed between its renames: the dataset lives only in the backup."""
    backup = tmp_path / ".ds.old-123"
    backup.mkdir()
    Manifest(rows_in=0).write(backup)
    (tmp_path / ".ds.tmp-456").mkdir()
    recover(tmp_path / "ds")
    assert (tmp_path / "ds" / MANIFEST_NAME).exists()
    assert not backup.exists() and not (tmp_path / ".ds.tmp-456").exists()


@pytest.mark.slow
def test_runs_on_an_external_dask_scheduler_and_worker(tmp_path: Path) -> None:
    dask = Path(sys.executable).parent / "dask"
    env = {**os.environ, "PYTHONPATH": str(REPO), "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    sched_file = tmp_path / "scheduler.json"
    procs = [subprocess.Popen([str(dask), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--scheduler-file", str(sched_file)], cwd=tmp_path, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)]
    try:
        deadline = time.monotonic() + 60
        while not sched_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        address = json.loads(sched_file.read_text())["address"]
        procs.append(subprocess.Popen([str(dask), "worker", address, "--nworkers", "1", "--nthreads", "1",
                                       "--no-dashboard", "--local-directory", str(tmp_path / "w")], cwd=tmp_path,
                                      env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      start_new_session=True))
        from distributed import Client

        with Client(address, timeout="60s") as client:
            client.wait_for_workers(1, timeout=120)
        write_raw(tmp_path / "raw" / "a.parquet", _rows(0, 5) + [raw_row(9, None)])
        out = clean(CleanConfig(raw=tmp_path / "raw", out=tmp_path / "ds", scheduler=address, progress=False))
        manifest = Manifest.read(out)
        assert (manifest.rows_in, manifest.rows_out, manifest.drops) == (6, 5, {"fetch_failed": 1})
    finally:
        for proc in reversed(procs):
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.slow
def test_cli_prints_the_funnel_and_fails_clearly(dask_address, tmp_path: Path) -> None:
    from flows.cli import app

    write_raw(tmp_path / "raw" / "a.parquet", _rows(0, 3) + [raw_row(5, jpeg(photo(5)), "Sunset")])
    runner = CliRunner()
    result = runner.invoke(app, ["clean", "--raw", str(tmp_path / "raw"), "--out", str(tmp_path / "ds"),
                                 "--scheduler", dask_address, "--langs", "en,fr", "--image-size", "256",
                                 "--val-fraction", "0", "--write-rejected"])
    assert result.exit_code == 0, result.output
    assert "caption_too_short" in result.output and "rows out" in result.output
    manifest = Manifest.read(tmp_path / "ds")
    assert manifest.parameters["image_size"] == 256 and manifest.parameters["langs"] == ["en", "fr"]
    assert manifest.per_split == {"train": 3} and manifest.extra["rejected"]
    missing = runner.invoke(app, ["clean", "--raw", str(tmp_path / "nope"), "--out", str(tmp_path / "x")])
    assert missing.exit_code == 1 and "nope" in missing.output and "Traceback" not in missing.output
