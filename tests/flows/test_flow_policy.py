"""Flow runs whose parameters try to switch off a crawl safety guard, or point clean at any address, fail at once
with a message naming what was refused; nothing is crawled or cleaned.  The parameters go the way a deployment
run's do: a plain mapping that Prefect validates into `PipelineConfig` before the flow body runs."""

from __future__ import annotations

import pytest

from flows.pipeline import clean_flow, crawl_flow

SOURCE = {"name": "site", "kind": "news", "start_urls": ["http://127.0.0.1:9/"]}


def _params(tmp_path, **crawl) -> dict:
    return {"data_dir": str(tmp_path / "data"), "runs_dir": str(tmp_path / "runs"),
            "crawl": {"sources": [SOURCE], "allow_private": True, **crawl}}


@pytest.mark.parametrize(("crawl", "refused"), [
    ({"options": {"scrapy_settings": {"TELNETCONSOLE_ENABLED": True}}}, "crawl.options.scrapy_settings"),
    ({"options": {"scrapy_settings": {"MMPIPE_ALLOW_PRIVATE": True, "REMOTE_CONTROL_ENABLED": True}}},
     "crawl.options.scrapy_settings"),
    ({"options": {"obey_robots": False}}, "robots.txt is always obeyed"),
    ({"options": {"blocklist": "/dev/null"}}, "crawl.options.blocklist"),
    ({"sources": [{**SOURCE, "ignore_robots": ["*"]}]}, "ignore_robots: '\\*' is not a host of this source"),
])
def test_hostile_flow_parameters_are_refused_before_anything_runs(prefect_api, tmp_path, crawl, refused):
    state = crawl_flow(config=_params(tmp_path, **crawl), return_state=True)
    assert state.is_failed()
    with pytest.raises(Exception, match=refused):
        state.result()
    assert not (tmp_path / "data" / "raw").exists(), "a crawl started"


@pytest.mark.parametrize("address", ["tcp://10.0.0.5:8786/x", "inproc://scheduler", "tcp://user@host:8786",
                                     "scheduler.json", "tcp://host:0"])
def test_clean_scheduler_must_be_a_scheduler_address(prefect_api, tmp_path, address):
    params = {**_params(tmp_path), "clean": {"scheduler": address}}
    state = clean_flow(config=params, return_state=True)
    assert state.is_failed()
    with pytest.raises(Exception, match="not a Dask scheduler address"):
        state.result()
