"""One source, one process: `python -m crawlers.run --config-json FILE --source NAME`.

Scrapy's reactor cannot be restarted and an in-process crawl takes over logging, so every source runs here, in
its own interpreter; `crawlers.stage` starts these processes (in parallel, or on other machines via the flows).
Exit status: 0 done, 1 crawl failed, 2 bad configuration, 3 the source is already being crawled into this dir.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crawlers.run", description=__doc__)
    parser.add_argument("--config-json", required=True, type=Path, help="CrawlConfig.to_dict() as JSON")
    parser.add_argument("--source", required=True)
    parser.add_argument("--shard", type=int, default=0, help="which of the source's `processes` this one is")
    args = parser.parse_args(argv)
    from crawlers.internals import hide_unused_modules

    hide_unused_modules()  # pyarrow need not load numpy/pandas here (crawlers/internals.py)
    from crawlers.config import ConfigError, CrawlConfig  # after the hook: it imports pyarrow
    from crawlers.process import run_source

    try:
        config = CrawlConfig.from_dict(json.loads(args.config_json.read_text()))
        processes = config.source(args.source).processes
        if not 0 <= args.shard < processes:
            raise ConfigError(f"--shard {args.shard}: source '{args.source}' has {processes} process(es)")
    except (ConfigError, OSError, ValueError, TypeError) as exc:
        print(f"{args.config_json}: {exc}", file=sys.stderr)
        return 2
    logging.captureWarnings(True)
    return run_source(config, args.source, args.shard)


if __name__ == "__main__":
    sys.exit(main())
