"""Session-wide test setup: isolated Prefect/Dask state, and the shared fixtures folder."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import pytest

_SESSION_TMP = Path(tempfile.mkdtemp(prefix="mmpipe-tests-"))
os.environ.setdefault("PREFECT_HOME", str(_SESSION_TMP / "prefect"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("DASK_TEMPORARY_DIRECTORY", str(_SESSION_TMP / "dask"))
os.environ.setdefault("MPLBACKEND", "Agg")
# Object storage: dummy credentials, and an endpoint on a closed loopback port until `s3_server` sets its own, so
# an s3:// URL used outside that fixture fails at once instead of reaching AWS.
for _key, _value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                     ("AWS_SESSION_TOKEN", "testing"), ("AWS_DEFAULT_REGION", "us-east-1")):
    os.environ[_key] = _value
os.environ["AWS_ENDPOINT_URL"] = os.environ["MMPIPE_S3_ENDPOINT_URL"] = "http://127.0.0.1:9"
os.environ.pop("AWS_PROFILE", None)

REPO = Path(__file__).resolve().parent.parent


def fixtures_dir() -> Path:
    return Path(os.environ.get("MMPIPE_FIXTURES", REPO.parent / "shared" / "fixtures")).resolve()


@pytest.fixture(scope="session")
def fixtures() -> Path:
    """The real saved pages/feeds/images of ../shared/fixtures; a fresh user clone may not have them."""
    path = fixtures_dir()
    if not path.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"MMPIPE_FIXTURES={path} is missing; CI always has ../shared/fixtures")
        pytest.skip(f"real-page fixtures not found at {path}; set MMPIPE_FIXTURES to ../shared/fixtures to run these")
    return path


@pytest.fixture(scope="session")
def dask_address(s3_server):
    """One real LocalCluster (2 worker processes, 1 thread each) on loopback for the whole session: the stages run
    on it by scheduler address, the other way (besides their own LocalCluster) they are meant to run.  Its workers
    inherit the S3 server's endpoint (`s3_server`), as a real cluster's workers carry their storage settings."""
    from distributed import LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0",
                           host="127.0.0.1", silence_logs=logging.WARNING)
    yield cluster.scheduler_address
    cluster.close()


@pytest.fixture(scope="session")
def s3_server():
    """A real S3-compatible server (moto's, in server mode) on a free loopback port for the whole session; every
    s3:// location in this process and in the processes it starts afterwards points at it."""
    import socket

    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    os.environ["AWS_ENDPOINT_URL"] = os.environ["MMPIPE_S3_ENDPOINT_URL"] = endpoint
    yield endpoint
    server.stop()
    os.environ["AWS_ENDPOINT_URL"] = os.environ["MMPIPE_S3_ENDPOINT_URL"] = "http://127.0.0.1:9"


@pytest.fixture
def s3_bucket(s3_server, request) -> str:
    """A fresh bucket on the session's S3 server, as an ``s3://`` URL."""
    import uuid

    from data_schemas import storage

    name = f"mmpipe-{uuid.uuid4().hex[:12]}"
    fs, _ = storage.filesystem(f"s3://{name}")
    fs.mkdir(name)
    return f"s3://{name}"
