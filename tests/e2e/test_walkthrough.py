"""The README's walk-through, as a new user does it: `mmpipe demo` in an empty folder, then every command it prints
under "Next", exactly as printed, in a shell with the project's environment activated (the README's first step).

A command that fails fails the test.  A command marked "(runs until Ctrl-C)" (`mmpipe serve --demo`) must come up
(it prints where its Prefect UI is) and stop cleanly on Ctrl-C.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows.report import LONG_RUNNING

pytestmark = pytest.mark.slow  # the whole demo, then each next step

VENV_BIN = Path(sys.executable).parent


def _shell_env() -> dict[str, str]:
    """A shell after `source .venv/bin/activate`: the venv's bin first on PATH, no Prefect server configured."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env.update(PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}", VIRTUAL_ENV=str(VENV_BIN.parent),
               PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1", COLUMNS="200")
    return env


def next_steps(output: str) -> list[tuple[str, str]]:
    """(command, description) pairs printed under "Next"."""
    lines = output[output.index("\nNext\n") + len("\nNext\n"):].splitlines()
    steps = []
    for line, following in zip(lines, [*lines[1:], ""], strict=True):
        if re.match(r"^  \S", line) and not line.lstrip().startswith("("):
            steps.append((line.strip(), following.strip()))
    return steps


def _serve_until_up(command: str, cwd: Path, env: dict[str, str]) -> str:
    log = cwd / "serve-step.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(["bash", "-c", command], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if "being served and polling" in log.read_text(errors="replace"):
                break
            time.sleep(1)
        seen = log.read_text(errors="replace")
        assert proc.poll() is None, f"{command!r} exited with {proc.returncode}:\n{seen[-3000:]}"
        assert "Prefect UI" in seen and "being served" in seen, f"{command!r} did not come up:\n{seen[-3000:]}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    return log.read_text(errors="replace")


def test_demo_then_every_next_command_as_printed(tmp_path):
    env = _shell_env()
    demo = subprocess.run(["bash", "-c", "mmpipe demo --articles 12 --steps 20"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    steps = next_steps(demo.stdout)
    assert [c.split()[1] for c, _ in steps] == ["inspect", "verify", "export", "serve"], demo.stdout[-2000:]
    for command, what in steps:
        if LONG_RUNNING in what:
            _serve_until_up(command, tmp_path, env)
            continue
        done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, f"{command!r} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        if " export " in command:  # the open_clip command line it prints names the sets it wrote
            assert "python -m open_clip_train.main --train-data" in done.stdout, done.stdout
    assert (tmp_path / "report.html").is_file() and (tmp_path / "export" / "train" / "sizes.json").is_file()
