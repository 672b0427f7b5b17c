"""`crawl_clean_train` on the demo site, read back through the Prefect API the way the UI shows it.

One flow run is shared by the module (crawl + clean + a few training steps cost ~1 minute on 2 cores); the later
tests re-run flows against its outputs, which is exactly what the cache and resume logic is for.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import StateType

from data_schemas import Manifest
from flows import artifacts
from flows.demo import demo_config
from flows.pipeline import clean_flow, crawl_clean_train

pytestmark = pytest.mark.slow
SOURCES = ("demo-news", "demo-mastodon", "demo-bluesky")


@pytest.fixture(scope="module")
def demo():
    from crawlers.demo import running_demo_site

    with running_demo_site(articles=50, seed=0) as site:
        yield site


def _config(demo, workdir: Path, *, steps: int = 4, **sections):
    cfg = demo_config(demo.base_url, workdir, steps=steps)
    cfg.train.resume = True  # re-runs continue the run instead of refusing its checkpoints
    cfg.train.options = {"ckpt_every": 2, "num_workers": 0, "batch_size": 16}
    for name, values in sections.items():
        for key, value in values.items():
            setattr(getattr(cfg, name), key, value)
    return cfg


@pytest.fixture(scope="module")
def first(prefect_api, demo, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("flow")
    config = _config(demo, workdir)
    state = crawl_clean_train(config, return_state=True)
    assert state.is_completed(), f"first flow run failed: {state.message}"
    return SimpleNamespace(config=config, state=state, result=state.result(), workdir=workdir,
                           requests=sum(demo.requests.values()))


def _run_records(api, flow_run_id):
    async def read(client):
        only = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        return (await client.read_flow_run(flow_run_id), await client.read_task_runs(flow_run_filter=only),
                await client.read_artifacts(flow_run_filter=only))

    flow_run, task_runs, arts = api(read)
    return flow_run, {t.name: t for t in task_runs}, {a.key: a for a in arts}


def test_flow_run_completes_and_its_artifacts_hold_the_true_funnel(first, demo, api):
    flow_run, tasks, arts = _run_records(api, first.state.state_details.flow_run_id)
    assert flow_run.state.type == StateType.COMPLETED
    assert flow_run.parameters["config"]["train"]["steps"] == 4, "the typed config is the run's parameter"
    assert set(tasks) == {*(f"crawl {s}" for s in SOURCES), "clean", "train", "evaluate"}
    assert all(t.state.type == StateType.COMPLETED for t in tasks.values()), {n: t.state for n, t in tasks.items()}

    funnel = json.loads(arts[artifacts.KEY_FUNNEL].data)
    expected = {k: v for k, v in demo.site.expected_clean_drops().items() if v}
    assert artifacts.funnel_drops(funnel) == expected
    rows = {r["reason"]: r["rows"] for r in funnel}
    assert rows["rows_out"] == demo.site.expected_kept() == first.result["clean"]["rows_out"]
    assert rows["rows_in"] == demo.site.expected_raw_rows()

    crawl = {r["source"]: r for r in json.loads(arts[artifacts.KEY_CRAWL].data)}
    assert set(crawl) == set(SOURCES) and all(r["status"] == "crawled" and r["rows"] > 0 for r in crawl.values())
    assert all(r["drops"] > 0 for r in crawl.values()), "every demo source plants opt-outs the crawl must count"

    manifest = Manifest.read(first.config.clean_dir)
    shards_md = arts[artifacts.KEY_SHARDS].data
    assert manifest.shards and all(s.name in shards_md for s in manifest.shards)
    assert (first.config.clean_dir / manifest.shards[0].name).resolve().as_uri() in shards_md

    metrics = json.loads(arts[artifacts.KEY_METRICS].data)
    assert metrics[-1]["step"] == 4 and metrics[-1]["loss"] > 0
    assert arts[artifacts.KEY_LOSS_PLOT].type == "image"
    assert arts[artifacts.KEY_LOSS_PLOT].data.startswith("data:image/png;base64,")
    assert "mean_R@1" in arts[artifacts.KEY_EVAL].data
    assert (Path(first.result["evaluate"]["path"])).is_file()


def test_clean_is_skipped_when_inputs_and_parameters_are_unchanged(first, api):
    manifest = first.config.clean_dir / "_manifest.json"
    before = (manifest.stat().st_mtime_ns, manifest.read_bytes())
    state = clean_flow(first.config, return_state=True)
    assert state.is_completed() and state.result()["cached"] is True
    _, tasks, arts = _run_records(api, state.state_details.flow_run_id)
    assert tasks["clean"].state.name == "Cached", "the UI shows the skipped clean as Cached"
    assert (manifest.stat().st_mtime_ns, manifest.read_bytes()) == before, "the dataset was not rewritten"
    assert artifacts.KEY_FUNNEL in arts, "a cached run still shows its funnel"


def test_failed_stage_fails_the_run_readably_and_the_rerun_reuses_the_crawl(first, demo, api):
    clean_dir = first.config.clean_dir
    moved = clean_dir.with_name("clean.moved-away")
    raw_files = sorted(first.config.raw_dir.glob("*.parquet"))
    shutil.move(clean_dir, moved)  # the training data disappears; the nightly train (no clean) must fail
    try:
        failed = crawl_clean_train(_config(demo, first.workdir, clean={"enabled": False}), return_state=True)
    finally:
        shutil.move(moved, clean_dir)
    assert failed.is_failed()
    flow_run, tasks, _ = _run_records(api, failed.state_details.flow_run_id)
    assert flow_run.state.type == StateType.FAILED
    assert "train failed" in flow_run.state.message and str(clean_dir) in flow_run.state.message
    assert "no manifest" in flow_run.state.message
    assert tasks["train"].state.type == StateType.FAILED and "evaluate" not in tasks
    assert all(tasks[f"crawl {s}"].state.name == "Cached" for s in SOURCES), "a completed crawl is reused"
    assert sorted(first.config.raw_dir.glob("*.parquet")) == raw_files, "earlier outputs are intact"

    rerun = crawl_clean_train(_config(demo, first.workdir, train={"steps_per_run": 2}), return_state=True)
    assert rerun.is_completed(), rerun.message
    _, tasks, _ = _run_records(api, rerun.state_details.flow_run_id)
    assert {n: t.state.name for n, t in tasks.items() if n != "evaluate"} == {
        **{f"crawl {s}": "Cached" for s in SOURCES}, "clean": "Cached", "train": "Completed"}
    assert sum(demo.requests.values()) == first.requests, "no page or image was fetched again"
    metrics = artifacts.read_metrics(Path(rerun.result()["train"]["run"]))
    assert [m["step"] for m in metrics][-1] == 6, "training continued from the checkpoint at 4 for 2 more steps"


def test_cli_run_summarises_the_run_and_fails_readably(first, tmp_path):
    import yaml
    from typer.testing import CliRunner

    from flows.cli import app

    config = first.config.model_copy(deep=True)
    for section in (config.crawl, config.train, config.evaluate):
        section.enabled = False
    path = tmp_path / "flow.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    result = CliRunner().invoke(app, ["run", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert "Clean funnel (cached" in result.output and str(demo_kept(first)) in result.output

    path.write_text(yaml.safe_dump({**config.model_dump(mode="json"), "clean": {"enabled": True, "imagesize": 3}}))
    result = CliRunner().invoke(app, ["run", "--config", str(path)])
    assert result.exit_code == 1 and "clean.imagesize: Extra inputs are not permitted" in result.output
    assert "Traceback" not in result.output


def demo_kept(first) -> int:
    return first.result["clean"]["rows_out"]


def test_curate_section_scores_curates_and_trains_round_two(first, demo, api):
    from pipeline.tools import verify_dataset

    config = _config(demo, first.workdir, curate={"enabled": True, "keep_top": 0.8})
    state = crawl_clean_train(config, return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    _, tasks, arts = _run_records(api, state.state_details.flow_run_id)
    for name in ("train", "evaluate", "score", "curate", "train round 2", "evaluate round 2"):
        assert tasks[name].state.type == StateType.COMPLETED, (name, tasks[name].state)

    curated = config.curated_dir
    manifest = Manifest.read(curated)
    assert manifest.extra["parent"]["path"] == str(config.clean_dir)
    assert verify_dataset(curated).ok
    cur = manifest.extra["curate"]
    assert cur["rows_in"] == Manifest.read(config.clean_dir).rows_out == result["curate"]["curate"]["rows_in"]
    assert cur["drops"]["low_alignment"] > 0 and cur["rows_in"] - sum(cur["drops"].values()) == manifest.rows_out

    cut = json.loads(arts[artifacts.KEY_CUT].data)
    assert {r["reason"]: r["rows"] for r in cut if r["step"] == "kept"} == {"rows_out": manifest.rows_out}
    for key in (artifacts.KEY_ALIGNMENT, artifacts.KEY_EXTREMES):
        assert arts[key].type == "image" and arts[key].data.startswith("data:image/png;base64,")
    assert "round 2 (curated)" in arts[artifacts.KEY_ROUNDS].data

    second = Path(result["curate"]["train"]["run"])
    assert second == config.runs_dir / config.curate.run_name
    assert json.loads((second / "config.json").read_text())["data"] == str(curated)
    one = result["evaluate"]["result"]["model"]["val_samples"]
    two = result["curate"]["evaluate"]["result"]["model"]["val_samples"]
    assert one == two, "both rounds are evaluated on the same val pairs"
