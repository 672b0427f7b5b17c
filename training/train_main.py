"""``python -m training.train_main --config-json PATH [--resume latest]``: the process torchrun starts on each rank.

Also usable single-process (tests start it as a subprocess to SIGKILL it mid-run).
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path

from training.config import TrainConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="training.train_main", description=__doc__)
    parser.add_argument("--config-json", type=Path, required=True, help="a TrainConfig saved as JSON")
    parser.add_argument("--resume", default=None, help="'latest' or a checkpoint directory")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = TrainConfig.read_json(args.config_json)
    if args.resume:
        config = replace(config, resume=args.resume)
    from training.train import train

    train(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
