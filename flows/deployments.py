"""Deployments: the scheduled and on-demand ways to run the flows, registered with the Prefect server.

`mmpipe serve` registers them against ``PREFECT_API_URL`` (or the local server Prefect starts) and runs their flow
runs in this process's machine.  Training may instead go to a work pool (``--train-pool gpu``): the deployment is
registered there and any `prefect worker start --pool gpu` on a GPU machine with mmpipe installed picks it up; the
entrypoint is a module path (``flows.pipeline.train_flow``), so the worker needs no code download step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the CLI imports this module for its defaults; keep that cheap
    from flows.config import PipelineConfig

DAILY_CRAWL = "0 2 * * *"  # crawl + clean every day at 02:00
NIGHTLY_TRAIN = "0 4 * * *"  # train + evaluate every day at 04:00, after the crawl


@dataclass
class ServeOptions:
    crawl_cron: str | None = DAILY_CRAWL  # None: no schedule (run from the UI only)
    train_cron: str | None = NIGHTLY_TRAIN
    timezone: str = "UTC"
    train_pool: str | None = None  # register training in this work pool instead of serving it here
    limit: int | None = 1  # flow runs at once in this server: stages share the data directory


def _params(config: PipelineConfig, **switches: bool) -> dict[str, Any]:
    data = config.model_copy(deep=True)
    for section, enabled in switches.items():
        getattr(data, section).enabled = enabled
    return {"config": data.model_dump(mode="json")}


def _schedules(cron: str | None, timezone: str) -> list[Any]:
    from prefect.schedules import Cron

    return [Cron(cron, timezone=timezone)] if cron else []


def build_deployments(config: PipelineConfig, options: ServeOptions) -> tuple[list[Any], list[Any]]:
    """(deployments to serve here, deployments for a work pool).  Paths are made absolute first."""
    from prefect.types.entrypoint import EntrypointType

    from flows.pipeline import clean_flow, crawl_clean_train, crawl_flow, train_flow

    config = config.resolved()
    common = {"entrypoint_type": EntrypointType.MODULE_PATH, "tags": ["mmpipe"]}
    served = [
        crawl_clean_train.to_deployment(
            name="daily-crawl-clean", schedules=_schedules(options.crawl_cron, options.timezone),
            parameters=_params(config, train=False, evaluate=False),
            description="Crawl every source, then clean into the dataset (incremental).", **common),
        crawl_clean_train.to_deployment(
            name="full", parameters=_params(config),
            description="The whole pipeline once: crawl, clean, train, evaluate (run it from the UI).", **common),
        crawl_flow.to_deployment(name="crawl", parameters=_params(config), description="Crawl only.", **common),
        clean_flow.to_deployment(name="clean", parameters=_params(config), description="Clean only.", **common),
    ]
    train = train_flow.to_deployment(
        name="nightly-train", schedules=_schedules(options.train_cron, options.timezone),
        parameters=_params(config), description="Continue training on the dataset, then evaluate.",
        work_pool_name=options.train_pool, **common)
    return (served, [train]) if options.train_pool else (served + [train], [])


class DeploymentError(RuntimeError):
    """A deployment cannot be registered; the message says what to create or change."""


def _check_pool(name: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
        except ObjectNotFound:
            raise DeploymentError(f"work pool '{name}' does not exist on {client.api_url}: create it with "
                                  f"`prefect work-pool create {name} --type process`, then start "
                                  f"`prefect worker start --pool {name}` on the GPU machine") from None


def serve(config: PipelineConfig, options: ServeOptions, *, run_now: list[str] = ()) -> None:
    """Register every deployment, start a run of each ``run_now`` deployment (``flow/deployment``) at once, then
    serve the local ones until interrupted (Ctrl-C)."""
    from prefect import serve as prefect_serve
    from prefect.deployments import run_deployment

    served, pooled = build_deployments(config, options)
    if options.train_pool:
        _check_pool(options.train_pool)
    for deployment in pooled:
        deployment.apply(work_pool_name=options.train_pool)
    if run_now:
        for deployment in served:
            deployment.apply()  # registered first, so a run can be created before the runner starts
        for name in run_now:
            run_deployment(name, timeout=0, as_subflow=False)
    prefect_serve(*served, limit=options.limit)
