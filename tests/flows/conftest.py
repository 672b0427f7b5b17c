"""One Prefect test server for the whole session: starting one costs ~10-20 s on a loaded 2-core machine."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """The URL of a temporary Prefect server (SQLite in a temp dir) that every flow run of the session reports to."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield PREFECT_API_URL.value()


def _call_api(coro_fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    from prefect.client.orchestration import get_client

    async def main() -> Any:
        async with get_client() as client:
            return await coro_fn(client, *args, **kwargs)

    return asyncio.run(main())


@pytest.fixture(scope="session")
def api(prefect_api: str) -> Callable[..., Any]:
    """``api(lambda client, ...: client.read_...(...))``: read the server's records the way the UI does."""
    return _call_api
