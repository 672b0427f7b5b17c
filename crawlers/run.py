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


class _Unused:
    """pyarrow imports numpy (if installed) when it loads, and pandas on its first `pa.array()`, only to recognise
    their types among its inputs: ~0.15 s and ~1.5 s of CPU per source process for libraries the crawler never
    uses or hands to pyarrow.  Hiding them from this process makes pyarrow skip both."""

    names = ("pandas", "numpy")

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.partition(".")[0] in cls.names:
            raise ModuleNotFoundError(f"{name} is not used by the crawl process", name=name)
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crawlers.run", description=__doc__)
    parser.add_argument("--config-json", required=True, type=Path, help="CrawlConfig.to_dict() as JSON")
    parser.add_argument("--source", required=True)
    parser.add_argument("--shard", type=int, default=0, help="which of the source's `processes` this one is")
    args = parser.parse_args(argv)
    if not any(name in sys.modules for name in _Unused.names):
        sys.meta_path.insert(0, _Unused)
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
