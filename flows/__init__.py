"""Prefect flows and deployments that compose the stages, and the `mmpipe` CLI.

Set before Prefect is imported (it reads its settings then):
* the stages log to their own loggers (``mmpipe.*``, ``pipeline.*``, ``training.*``); naming them makes Prefect
  attach its handlers, so what a stage says shows up in the flow run's logs in the UI;
* the temporary server Prefect starts when no ``PREFECT_API_URL`` is set migrates a new database on its first
  start, which takes longer than Prefect's 20 s default on a small, busy machine.
Each is only a default: a value in the environment wins.
"""

import os

os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "mmpipe,pipeline,training,crawlers")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
