"""Start a multi-process (DDP) training run with torchrun from Python, for the CLI's ``--nproc N``.

The config travels as a JSON file in the run directory; torchrun's rendezvous stays on the loopback interface.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from data_schemas import storage
from training import runstore
from training.config import TrainConfig


class LaunchError(RuntimeError):
    """torchrun exited non-zero; the message says where its logs went."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun_command(config_json: Path, nproc: int) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", str(nproc),
            "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), "-m", "training.train_main",
            "--config-json", str(config_json)]


def launch_torchrun(config: TrainConfig, nproc: int, *, timeout: float | None = None) -> Path | str:
    """Run ``train(config)`` on ``nproc`` local processes; returns the run directory like ``train``.  A URL run
    directory is pulled into its local mirror here, trained there, and published when the ranks finish
    (`training.runstore`; single-process runs also publish each checkpoint as it is written)."""
    if nproc < 1:
        raise ValueError(f"nproc must be >= 1, got {nproc}")
    remote = config.out if storage.is_url(config.out) else None
    if remote:
        local = runstore.mirror_dir(remote)
        runstore.pull(remote, local)
        launch_torchrun(replace(config, out=local), nproc, timeout=timeout)
        runstore.push_run(local, remote)
        return remote
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    config_json = out / "launch-config.json"
    config.write_json(config_json)
    env = dict(os.environ)
    env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    root = Path(__file__).resolve().parent.parent
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    proc = subprocess.run(torchrun_command(config_json, nproc), env=env, timeout=timeout)
    if proc.returncode != 0:
        raise LaunchError(f"torchrun with {nproc} processes exited with code {proc.returncode}; the ranks' errors "
                          f"are printed above (run dir {out})")
    return out
