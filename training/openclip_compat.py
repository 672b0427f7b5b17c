"""Importing open_clip (and so torchvision) next to a CPU build of torch: the one place that works around it.

PyPI's Linux torchvision wheels are built against the CUDA torch of the same version.  Next to a CPU torch build
(what `make setup` installs) their C++ ops cannot load, which torchvision < 0.30 tolerates everywhere except two
unguarded ``torch.library.register_fake`` calls (``torchvision::nms`` and ``torchvision::qnms``) that then raise
at import.  open_clip uses none of torchvision's C++ ops (only its PIL transforms), so when the first import fails
that way we declare the two operator schemas (public ``torch.library`` API, no kernels) and import again.  With a
torchvision that loads its ops (a matching CUDA or CPU pair) nothing is changed.  Contract test:
tests/training/test_openclip_compat.py.  The bound on torchvision lives in pyproject.toml.

Nothing here may download: ``HF_HUB_OFFLINE`` is set before open_clip (and huggingface_hub) are imported, so a
model config that names a hub tokenizer or weights fails with a message instead of reaching the network.
"""

from __future__ import annotations

import logging
import os
import sys
from types import ModuleType

log = logging.getLogger("mmpipe.score")
_NMS_SCHEMA = "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"
_UNGUARDED_OPS = ("nms", "qnms")
_shim = None  # the torch.library.Library that holds the declared schemas (kept alive for the process)


def _declare_missing_ops() -> None:
    global _shim
    import torch

    _shim = torch.library.Library("torchvision", "DEF")
    for op in _UNGUARDED_OPS:
        _shim.define(f"{op}{_NMS_SCHEMA}")


def import_torchvision() -> ModuleType:
    try:
        import torchvision
    except RuntimeError as exc:
        if "torchvision::" not in str(exc) or _shim is not None:
            raise
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        _declare_missing_ops()
        log.info("torchvision's C++ ops do not load next to this torch build (%s); open_clip needs only its "
                 "image transforms", exc)
        import torchvision
    return torchvision


def import_open_clip() -> ModuleType:
    """open_clip, importable next to a CPU torch; a clear error when the `clip` extra is not installed."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import_torchvision()
        import open_clip
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(f"--open-clip needs open_clip and torchvision ({exc}); install them with "
                                  "`pip install -e '.[clip]'` (the Makefile's setup does)") from exc
    return open_clip
