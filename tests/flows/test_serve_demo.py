"""`mmpipe serve --demo`: the deployments are registered against a started demo site, with schedules, and a run
of them completes, as a user following the README sees in the Prefect UI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from data_schemas import Manifest

pytestmark = pytest.mark.slow  # a real `mmpipe serve` process, the demo site, a crawl and a clean

MMPIPE = str(Path(sys.executable).with_name("mmpipe"))
DEPLOYMENTS = {"daily-crawl-clean", "full", "crawl", "clean", "nightly-train"}


def _deployments(client):
    return client.read_deployments()


def _runs(client, deployment_id):
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    return client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))


def test_serve_demo_registers_scheduled_deployments_and_a_run_completes(prefect_api, api, tmp_path):
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "DO_NOT_TRACK": "1"}
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([MMPIPE, "serve", "--demo", "--workdir", str(tmp_path), "--articles", "6"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    state, by_name = None, {}
    try:
        deadline = time.monotonic() + 170
        while time.monotonic() < deadline and proc.poll() is None:
            by_name = {d.name: d for d in api(_deployments)}
            if "daily-crawl-clean" in by_name:
                runs = api(_runs, by_name["daily-crawl-clean"].id)
                state = runs[0].state if runs else None
                if state is not None and state.is_final():
                    break
            time.sleep(3)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    output = (tmp_path / "serve.log").read_text()
    assert DEPLOYMENTS <= set(by_name), output[-3000:]
    crons = {name: [s.schedule.cron for s in by_name[name].schedules] for name in ("daily-crawl-clean",
                                                                                 "nightly-train")}
    assert crons == {"daily-crawl-clean": ["*/5 * * * *"], "nightly-train": ["*/15 * * * *"]}
    assert "127.0.0.1" in str(by_name["full"].parameters["config"]["crawl"]["sources"])  # the started demo site
    assert state is not None and state.is_completed(), (state, output[-3000:])
    assert Manifest.read(tmp_path / "data" / "clean").rows_out > 0  # the run crawled the demo site and cleaned
