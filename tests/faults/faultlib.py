"""Run a stage in a subprocess that SIGKILLs itself at a named point (`data_schemas.faults`), or list its points."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from data_schemas import MANIFEST_NAME, Manifest, file_sha256
from data_schemas.faults import ENV_AT, ENV_LOG

REPO = Path(__file__).resolve().parents[2]


def _run(script: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    full = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
            **env}
    return subprocess.run([sys.executable, "-c", script], cwd=cwd, env=full, capture_output=True, text=True,
                          timeout=300)


def run_killed_at(script: str, point: str, *, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``script``; it must die by SIGKILL at ``point`` (an fnmatch pattern, optionally ``@n``)."""
    proc = _run(script, {ENV_AT: point}, cwd)
    why = f"not killed at {point} (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
    assert proc.returncode == -signal.SIGKILL, why
    return proc


def points_of(script: str, *, cwd: Path, log: Path) -> list[str]:
    """The kill points ``script`` passes through, in order (each once), from an uninterrupted run of it."""
    proc = _run(script, {ENV_LOG: str(log)}, cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return list(dict.fromkeys(log.read_text().splitlines()))


def dataset_state(root: Path) -> dict:
    """Everything an interrupted-and-resumed run must reproduce: the manifest without its timestamps, and every
    listed file's bytes (as sha256)."""
    manifest = Manifest.read(root).to_dict()
    manifest.pop("created_at")
    for run in manifest["extra"].get("runs", []):
        run.pop("created_at", None)
    manifest["extra"].pop("last_takedown", None)  # a fresh id per takedown
    files = [s["name"] for s in manifest["shards"]] + manifest["extra"].get("index", []) \
        + manifest["extra"].get("rejected", [])
    assert (root / MANIFEST_NAME).exists()
    return {"manifest": manifest, "files": {name: file_sha256(root / name) for name in files}}
