"""Contract test of training/openclip_compat.py's one trick: torchvision imports next to a CPU torch build.

If the plain import works (a torchvision built for this torch), the trick must change nothing; if it fails, it
must fail the way the trick expects (an unguarded fake registration of a `torchvision::` op), and after the trick
open_clip imports and torchvision's PIL transforms (all open_clip uses) work.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PLAIN = "import torch, torchvision; print('ops' if torchvision.extension._has_ops() else 'no-ops')"
SHIMMED = """
import numpy as np
from PIL import Image
from training.openclip_compat import import_open_clip, import_torchvision
open_clip = import_open_clip()
tv = import_torchvision()
from torchvision import transforms
x = transforms.Compose([transforms.Resize(32), transforms.CenterCrop(32), transforms.ToTensor()])(
    Image.fromarray(np.full((40, 60, 3), 200, np.uint8)))
assert tuple(x.shape) == (3, 32, 32), x.shape
print('ok', tv.__version__, open_clip.__version__, 'ops' if tv.extension._has_ops() else 'no-ops')
"""


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)


def test_torchvision_and_open_clip_import_next_to_this_torch():
    plain = _run(PLAIN)
    if plain.returncode != 0:
        assert "RuntimeError" in plain.stderr and "operator torchvision::" in plain.stderr, plain.stderr
    shimmed = _run(SHIMMED)
    assert shimmed.returncode == 0, shimmed.stderr
    assert shimmed.stdout.startswith("ok")
    if plain.returncode == 0:  # a torchvision that loads its ops: the trick is not used
        assert plain.stdout.strip() == shimmed.stdout.split()[-1] == "ops"
