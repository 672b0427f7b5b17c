"""One crawl shard as its own process: the piece the local stage (crawlers/stage.py) and the cluster tasks
(crawlers/cluster.py) both run, so that neither imports the other."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from crawlers.config import CrawlConfig

logger = logging.getLogger("mmpipe.crawl")
REPO_ROOT = Path(__file__).resolve().parent.parent
ProgressFn = Callable[[str, dict[str, Any]], None]


class CrawlError(RuntimeError):
    """A source process failed; the message names the source, its exit status, its log and its last output."""

    def __init__(self, source: str, message: str):
        super().__init__(f"crawl of source '{source}' failed: {message}")
        self.source = source


def _log_progress(name: str, data: dict[str, Any]) -> None:
    logger.info("%s: %s", name, ", ".join(f"{k}={v}" for k, v in data.items() if k not in ("event", "source")))


def run_shard_process(config: CrawlConfig, source_name: str, shard: int, config_file: Path,
                      progress: ProgressFn | None) -> dict[str, Any]:
    """Run one shard as its own `python -m crawlers.run` process (Scrapy's reactor is one per process); its summary.
    Raises CrawlError naming the source, the exit status, the log and the last stderr lines."""
    cmd = [sys.executable, "-m", "crawlers.run", "--config-json", str(config_file), "--source", source_name,
           "--shard", str(shard)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, bufsize=1)
    stderr_tail: deque[str] = deque(maxlen=40)
    reader = threading.Thread(target=lambda: stderr_tail.extend(proc.stderr), daemon=True)
    reader.start()
    summary: dict[str, Any] | None = None
    report = progress or _log_progress
    last = 0.0
    for line in proc.stdout:
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("event") == "done":
            summary = msg.get("summary")
        elif msg.get("event") == "progress" and (progress or time.monotonic() - last > 10):
            last = time.monotonic()
            report(source_name, msg)
    rc = proc.wait()
    reader.join(timeout=5)
    if rc != 0 or summary is None:
        tail = "".join(stderr_tail).strip()[-2000:] or "(no output)"
        log = config.state_dir / f"{source_name}*.log"
        raise CrawlError(source_name, f"exit status {rc}; log: {log}\n{tail}")
    return summary
