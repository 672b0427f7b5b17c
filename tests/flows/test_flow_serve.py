"""`mmpipe serve` registers the deployments, with their schedules and parameters, on the server it is pointed at."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from data_schemas import Manifest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
EXPECTED = {"crawl-clean-train/daily-crawl-clean", "crawl-clean-train/full", "crawl/crawl", "clean/clean",
            "train/nightly-train"}


def _stop(proc: subprocess.Popen) -> None:
    """Ctrl-C, as a user stops `mmpipe serve`; killed when it does not stop within a minute."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()


def _write_config(tmp_path: Path) -> Path:
    path = tmp_path / "flow.yaml"
    path.write_text(yaml.safe_dump({
        "data_dir": "data", "runs_dir": "runs",  # relative: serve must make them absolute
        "crawl": {"sources": [{"name": "site", "kind": "news", "start_urls": ["http://127.0.0.1:9/"]}]},
        "train": {"preset": "tiny", "steps": 5},
    }))
    return path


async def _deployments(client):
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterTags

    tagged = DeploymentFilter(tags=DeploymentFilterTags(all_=["mmpipe"]))
    found = await client.read_deployments(deployment_filter=tagged)
    out = {}
    for d in found:
        flow = await client.read_flow(d.flow_id)
        out[f"{flow.name}/{d.name}"] = d
    return out


def _wait_for(api, proc, log: Path, names: set[str], timeout: float = 150) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = api(_deployments)
        if names <= set(found):
            return found
        assert proc.poll() is None, f"mmpipe serve exited early:\n{log.read_text()[-3000:]}"
        time.sleep(1)
    raise AssertionError(f"deployments {sorted(names - set(found))} never appeared:\n{log.read_text()[-3000:]}")


def test_serve_registers_scheduled_deployments(prefect_api, api, tmp_path):
    from prefect.client.schemas.actions import WorkPoolCreate

    api(lambda c: c.create_work_pool(WorkPoolCreate(name="gpu", type="process")))
    config = _write_config(tmp_path)
    log = tmp_path / "serve.log"
    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    cmd = [sys.executable, "-m", "flows", "serve", "--config", str(config), "--crawl-cron", "15 1 * * *",
           "--train-cron", "30 3 * * 1-5", "--timezone", "Europe/Paris", "--train-pool", "gpu"]
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=fh, stderr=subprocess.STDOUT)
    try:
        found = _wait_for(api, proc, log, EXPECTED)
        assert proc.poll() is None, "serve must keep running to execute scheduled runs"
    finally:
        _stop(proc)

    daily, train = found["crawl-clean-train/daily-crawl-clean"], found["train/nightly-train"]
    assert [(s.schedule.cron, s.schedule.timezone) for s in daily.schedules] == [("15 1 * * *", "Europe/Paris")]
    assert [(s.schedule.cron, s.schedule.timezone) for s in train.schedules] == [("30 3 * * 1-5", "Europe/Paris")]
    assert not found["crawl-clean-train/full"].schedules and not found["clean/clean"].schedules
    # Training goes to the GPU pool (a worker there runs it by module path); the rest is served by this process.
    assert train.work_pool_name == "gpu" and train.entrypoint == "flows.pipeline.train_flow"
    assert daily.work_pool_name is None

    params = daily.parameters["config"]
    assert params["train"]["enabled"] is False and params["evaluate"]["enabled"] is False
    assert params["crawl"]["enabled"] and params["clean"]["enabled"]
    assert Path(params["data_dir"]) == (tmp_path / "data").resolve(), "relative paths are resolved for the runner"
    assert train.parameters["config"]["train"]["steps"] == 5
    # The UI renders the config as a form from this schema.
    schema = daily.parameter_openapi_schema
    assert schema["properties"]["config"]["$ref"].endswith("PipelineConfig")
    assert "CrawlSection" in schema["definitions"] or "CrawlSection" in schema.get("$defs", {})


# `mmpipe serve --demo`: the deployments are registered against a started demo site, with schedules, and a run of
# them completes, as a user following the README sees in the Prefect UI.
MMPIPE = str(Path(sys.executable).with_name("mmpipe"))
DAILY = "crawl-clean-train/daily-crawl-clean"


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
            by_name = api(_deployments)
            if DAILY in by_name:
                runs = api(_runs, by_name[DAILY].id)
                state = runs[0].state if runs else None
                if state is not None and state.is_final():
                    break
            time.sleep(3)
    finally:
        _stop(proc)
        log.close()
    output = (tmp_path / "serve.log").read_text()
    assert EXPECTED <= set(by_name), output[-3000:]
    crons = {name: [s.schedule.cron for s in by_name[name].schedules] for name in (DAILY, "train/nightly-train")}
    assert crons == {DAILY: ["*/5 * * * *"], "train/nightly-train": ["*/15 * * * *"]}
    sources = by_name["crawl-clean-train/full"].parameters["config"]["crawl"]["sources"]
    assert "127.0.0.1" in str(sources)  # the demo site it started
    assert state is not None and state.is_completed(), (state, output[-3000:])
    assert Manifest.read(tmp_path / "data" / "clean").rows_out > 0  # the run crawled the demo site and cleaned
