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

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
EXPECTED = {"crawl-clean-train/daily-crawl-clean", "crawl-clean-train/full", "crawl/crawl", "clean/clean",
            "train/nightly-train"}


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
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()

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
