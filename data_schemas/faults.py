"""Named kill points for the crash tests: where a stage makes work durable, it calls `fault_point(name)`.

`MMPIPE_FAULT_AT=<pattern>[@<n>]` makes the process SIGKILL itself the n-th time (default: the first) it reaches
a point whose name matches the `fnmatch` pattern; `MMPIPE_FAULT_LOG=<file>` appends the name of every point
reached to that file, so a test can list a run's points and then kill at each.  With neither variable set (every
run outside the tests) a point costs one environment lookup.

Names: `publish:<file>` just before an atomic writer (`data_schemas.io`) renames its temporary file over
<file> (a file name, not a path) and `published:<file>` just after; stages add their own commits, e.g.
`crawl.committed:<file>` (the crawl store marks a RAW file done), `clean.swap:*` (the new dataset version goes
in), `takedown.*`.  A kill is SIGKILL, as from the kernel's OOM killer or `kill -9`: no cleanup runs.
"""

from __future__ import annotations

import fnmatch
import os
import signal
import sys

ENV_AT = "MMPIPE_FAULT_AT"
ENV_LOG = "MMPIPE_FAULT_LOG"
_hits: dict[str, int] = {}


def fault_point(name: str) -> None:
    """Kill this process here if MMPIPE_FAULT_AT names this point (see the module doc); else do nothing."""
    spec, log = os.environ.get(ENV_AT), os.environ.get(ENV_LOG)
    if not spec and not log:
        return
    if log:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(name + "\n")
    if not spec:
        return
    pattern, _, nth = spec.rpartition("@") if "@" in spec else (spec, "", "1")
    if not fnmatch.fnmatchcase(name, pattern):
        return
    _hits[pattern] = _hits.get(pattern, 0) + 1
    if _hits[pattern] == int(nth or 1):
        print(f"{ENV_AT}={spec}: killing process {os.getpid()} at {name}", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
