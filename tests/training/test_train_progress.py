"""Where there is no terminal (a Prefect task, a log file), training logs one progress line per logged step
(#19: the train task logged 3 lines in 2 minutes); the flow's train task forwards them to its run logger."""

from __future__ import annotations

import logging
import re

from flows.tasks import forward_logs
from training.config import TrainConfig
from training.train import train


def test_training_without_a_terminal_logs_progress_every_log_every_steps(few_groups_data, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="mmpipe.train")
    train(TrainConfig(data=few_groups_data, out=tmp_path / "run", preset="tiny", steps=12, log_every=4,
                      device="cpu"))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("step ")]
    assert [int(re.match(r"step (\d+)/12 ", line).group(1)) for line in lines] == [1, 4, 8, 12], lines
    assert all("loss " in line and " eta " in line for line in lines)


def test_forward_logs_sends_a_stages_records_to_the_run_logger_only_inside_the_block():
    seen: list[str] = []
    target = logging.getLogger("test.forward.target")
    target.propagate = False
    target.setLevel(logging.INFO)
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    target.addHandler(handler)
    stage = logging.getLogger("test.forward.stage")
    with forward_logs("test.forward.stage", target):
        stage.info("step 4/12 (33%%) loss %s", "2.5")
    stage.info("after the block")
    assert seen == ["step 4/12 (33%) loss 2.5"]
