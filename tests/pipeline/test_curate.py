"""`mmpipe curate`: a valid new dataset version (`mmpipe verify` passes) that names its parent, whose funnel adds
up, with exactly the rows the alignment filter and SemDeDup should drop, and the parent left untouched.

The scores are written here in the SCORES format with known values (what `mmpipe score` writes; the scoring
itself is tested in tests/training/test_score.py), so each decision can be checked row by row.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from data_schemas import (
    SCORES_META_MODEL,
    SCORES_META_SHARD,
    SCORES_SCHEMA,
    Manifest,
    atomic_write_parquet,
    file_sha256,
    reasons,
    score_part_name,
    scores_dir,
)
from data_schemas.faults import ENV_AT
from flows.commands.clean import register as register_clean
from flows.commands.tools import register as register_tools
from pipeline.config import CurateConfig
from pipeline.curate import DROPPED_NAME, curate
from pipeline.dataset import load_previous
from pipeline.inputs import CleanError
from pipeline.semdedup import semantic_duplicates
from training.synthetic import SyntheticSpec, write_synthetic_clean

MODEL = {"kind": "mmpipe", "run": "/runs/r", "preset": "tiny", "step": 9, "weights_sha256": "0" * 64}
DIM = 16
COPIES = 6  # train rows 0..5 show "the same picture" (embeddings within cosine 0.999)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return write_synthetic_clean(tmp_path_factory.mktemp("curate") / "data",
                                 SyntheticSpec(rows=120, val_fraction=0.25, rows_per_shard=30, row_group_size=10,
                                               image_size=48, seed=5))


def _embeddings(n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(n, DIM))
    emb[:COPIES] = emb[0] + 0.01 * rng.normal(size=(COPIES, DIM))
    return emb / np.linalg.norm(emb, axis=1, keepdims=True)


def write_scores(data: Path, name: str = "r", *, alignment=None, no_image: tuple[str, ...] = ()) -> dict[str, float]:
    """One SCORES part per shard; alignment per key (default: a fixed random draw).  Returns key -> alignment."""
    manifest = Manifest.read(data)
    keys = [k for s in manifest.shards for k in pq.read_table(data / s.name, columns=["key"])["key"].to_pylist()]
    align = alignment or dict(zip(keys, np.random.default_rng(1).uniform(-0.2, 0.8, len(keys)).tolist(),
                                  strict=True))
    emb = dict(zip(keys, _embeddings(len(keys)), strict=True))
    for n, shard in enumerate(manifest.shards):
        ks = pq.read_table(data / shard.name, columns=["key"])["key"].to_pylist()
        table = pa.table({
            "key": ks,
            "image_embedding": pa.array([None if k in no_image else emb[k].astype(np.float16) for k in ks],
                                        pa.list_(pa.float16())),
            "text_embedding": pa.array([emb[k].astype(np.float16) for k in ks], pa.list_(pa.float16())),
            "alignment": pa.array([None if k in no_image else align[k] for k in ks], pa.float32()),
        }, schema=SCORES_SCHEMA)
        meta = {**SCORES_SCHEMA.metadata, SCORES_META_MODEL: json.dumps(MODEL),
                SCORES_META_SHARD: json.dumps({"name": shard.name, "sha256": shard.sha256, "rows": shard.rows})}
        atomic_write_parquet(scores_dir(data, name) / score_part_name(n), table.replace_schema_metadata(meta))
    return align


def _rows(data: Path) -> dict[str, str]:
    """key -> split of every row in a dataset's shards."""
    out = {}
    for s in Manifest.read(data).shards:
        t = pq.read_table(data / s.name, columns=["key", "split"])
        out.update(zip(t["key"].to_pylist(), t["split"].to_pylist(), strict=True))
    return out


def _verify(path: Path) -> None:
    app = typer.Typer()
    register_tools(app)
    result = CliRunner().invoke(app, ["verify", str(path)])
    assert result.exit_code == 0, result.output


def test_curate_writes_a_valid_version_with_the_expected_drops(dataset, tmp_path):
    data = Path(shutil.copytree(dataset, tmp_path / "data"))
    parent_files = {p.name: file_sha256(p) for p in (data / "shards").iterdir()}
    parent_rows = _rows(data)
    train = [k for k, s in parent_rows.items() if s == "train"]
    undecodable = train[-1]
    align = write_scores(data, no_image=(undecodable,))
    copies = [k for k in list(parent_rows)[:COPIES]]
    assert all(parent_rows[k] == "train" for k in copies)
    for i, k in enumerate(copies):  # the copies are the best-aligned rows: all survive the alignment filter
        align[k] = 0.9 + 0.01 * i
    write_scores(data, alignment=align, no_image=(undecodable,))

    out = curate(CurateConfig(data=data, scores="r", out=tmp_path / "curated", keep_top=0.5,
                              semantic_threshold=0.95, semantic_max_drop=None))
    m, parent = Manifest.read(out), Manifest.read(data)
    _verify(out)
    _verify(data)
    assert {p.name: file_sha256(p) for p in (data / "shards").iterdir()} == parent_files  # parent untouched

    # the alignment filter: of the decodable train rows, the best-aligned half stays
    pool = sorted((k for k in train if k != undecodable), key=lambda k: (-align[k], k))
    kept_by_alignment = pool[:math.ceil(0.5 * len(pool))]
    # SemDeDup: of the copies only the best-aligned one stays, the others name it
    best_copy = copies[-1]
    expected = set(kept_by_alignment) - (set(copies) - {best_copy})
    expected |= {k for k, s in parent_rows.items() if s == "val"}  # val is not curated
    assert set(_rows(out)) == expected

    dropped = pq.read_table(out / DROPPED_NAME).to_pylist()
    by_reason = {}
    for row in dropped:
        by_reason.setdefault(row["reason"], set()).add(row["key"])
    assert by_reason[reasons.IMAGE_UNDECODABLE] == {undecodable}
    assert by_reason[reasons.DUPLICATE_SEMANTIC] == set(copies) - {best_copy}
    assert {r["duplicate_of"] for r in dropped if r["reason"] == reasons.DUPLICATE_SEMANTIC} == {best_copy}
    assert by_reason[reasons.LOW_ALIGNMENT] == set(pool) - set(kept_by_alignment)

    # the funnel: the parent's, plus this pass's drops; this pass's own funnel adds up too
    cur = m.extra["curate"]
    assert m.rows_in == parent.rows_in and m.rows_in - sum(m.drops.values()) == m.rows_out == len(expected)
    assert cur["rows_in"] - sum(cur["drops"].values()) == cur["rows_out"] == m.rows_out
    assert cur["drops"] == {r: len(v) for r, v in by_reason.items()}
    assert m.drops[reasons.LOW_ALIGNMENT] == len(by_reason[reasons.LOW_ALIGNMENT])
    assert sum(m.per_split.values()) == sum(m.per_source.values()) == m.rows_out
    assert cur["alignment_cut"] == pytest.approx(min(align[k] for k in kept_by_alignment), abs=1e-6)
    assert m.extra["parent"]["path"] == str(data.resolve())
    assert m.extra["parent"]["manifest_sha256"] == file_sha256(data / "manifest.json")
    assert cur["model"] == MODEL and all((out / f).is_file() for f in cur["figures"])
    # untouched shards are shared with the parent (hard links), rewritten ones are new files
    for s in m.shards:
        same = (out / s.name).stat().st_ino == (data / s.name).stat().st_ino
        assert same == (s.sha256 == parent_files[Path(s.name).name])

    # a curated version is not a clean target: cleaning into it would lose the parent's dedup index
    with pytest.raises(CleanError, match="curated version"):
        load_previous(out)


def test_curate_cli_replaces_an_earlier_version_and_refuses_stale_scores(dataset, tmp_path):
    data = Path(shutil.copytree(dataset, tmp_path / "data"))
    write_scores(data)
    app = typer.Typer()
    register_clean(app)
    out = tmp_path / "curated"
    result = CliRunner().invoke(app, ["curate", str(data), "--out", str(out), "--keep-top", "0.8"])
    assert result.exit_code == 0, result.output
    first = Manifest.read(out).rows_out
    result = CliRunner().invoke(app, ["curate", str(data), "--out", str(out), "--keep-top", "0.5",
                                      "--no-semantic"])
    assert result.exit_code == 0, result.output
    assert "low_alignment" in result.output and Manifest.read(out).rows_out < first
    assert reasons.DUPLICATE_SEMANTIC not in Manifest.read(out).drops
    _verify(out)

    # a shard rewritten after scoring (a takedown, say): its scores are stale and curate says what to do
    shard = Manifest.read(data).shards[0]
    m = Manifest.read(data)
    m.shards[0].sha256 = "f" * 64
    m.write(data)
    result = CliRunner().invoke(app, ["curate", str(data), "--out", str(out)])
    assert result.exit_code == 1 and shard.name in result.output and "mmpipe score" in result.output


def test_semantic_dedup_never_drops_more_than_its_cap():
    """A crowded embedding space (every row within the threshold of another) loses only the capped share, the
    rows most like a better-ranked one first, and the applied threshold says so."""
    rng = np.random.default_rng(3)
    emb = np.ones((200, DIM)) + 0.01 * rng.normal(size=(200, DIM))  # all alike: cosines ~0.9999
    emb[:20] = emb[0] + 1e-5 * rng.normal(size=(20, DIM))  # ... and 19 rows closer still to row 0
    free = semantic_duplicates(emb, np.arange(200), threshold=0.95, max_drop=None)
    assert free.duplicate.sum() == 199 and free.threshold == 0.95
    capped = semantic_duplicates(emb, np.arange(200), threshold=0.95, max_drop=0.1)
    assert 15 <= capped.duplicate.sum() <= 20 and capped.threshold > 0.95
    assert capped.duplicate[1:20].sum() >= 15  # the nearest copies go first


def _files(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("point", ["publish:dropped.pq", "clean.swap"])
def test_a_killed_curate_leaves_the_earlier_version_and_the_next_run_completes(dataset, tmp_path, point):
    """SIGKILL while a second curate replaces the first version (the fault hook of data_schemas.faults): the first
    version is read back whole, and running the same command again gives what an unkilled run gives."""
    repo = Path(__file__).resolve().parents[2]
    data = Path(shutil.copytree(dataset, tmp_path / "data"))
    write_scores(data)
    out, reference = tmp_path / "curated", tmp_path / "reference"
    env = {**os.environ, "PYTHONPATH": str(repo), "COLUMNS": "200"}
    cmd = [sys.executable, "-m", "flows.cli", "curate", str(data), "--no-semantic", "--keep-top"]
    done = subprocess.run([*cmd, "0.8", "--out", str(out)], cwd=repo, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    before, first_rows = _files(out), Manifest.read(out).rows_out
    cmd += ["0.5"]

    killed = subprocess.run([*cmd, "--out", str(out)], cwd=repo, env={**env, ENV_AT: point}, capture_output=True,
                            text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    assert _files(out) == before  # the earlier version, byte for byte
    _verify(out)

    again = subprocess.run([*cmd, "--out", str(out)], cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    done = subprocess.run([*cmd, "--out", str(reference)], cwd=repo, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert Manifest.read(out).rows_out == Manifest.read(reference).rows_out < first_rows
    shards = {s.name: s.sha256 for s in Manifest.read(out).shards}
    assert shards == {s.name: s.sha256 for s in Manifest.read(reference).shards}
    _verify(out)
