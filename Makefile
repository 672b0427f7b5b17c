# `make demo` and `make test` work on a fresh machine: they create .venv (torch first), install, then run.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# A pinned torch is installed before the project so that pip never resolves the open `torch>=2.4` to a
# multi-GB CUDA build on a CPU machine.  On a GPU machine: make TORCH_SPEC='torch' ...
TORCH_SPEC ?= torch==2.13.0
# torchvision (for open_clip) pins torch exactly: it is installed in the same pip call as torch, the pair is then
# held by a constraints file while the project installs, so no dependency can swap the torch build.  On a GPU
# machine: make TORCH_SPEC='torch' TORCHVISION_SPEC='torchvision' ...
TORCHVISION_SPEC ?= torchvision==0.28.0
PINS := $(VENV)/torch-pins.txt
STAMP := $(VENV)/.mmpipe-installed
PYTEST_ARGS ?=

export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1

.PHONY: setup demo test lint bench clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -c "import torch, importlib.util as u; assert u.find_spec('torchvision')" 2>/dev/null || \
		$(BIN)/pip install "$(TORCH_SPEC)" "$(TORCHVISION_SPEC)"
	$(BIN)/python -c "from importlib.metadata import version as v; \
	print('torch==' + v('torch'), 'torchvision==' + v('torchvision'), sep=chr(10))" > $(PINS)
	$(BIN)/pip install -e '.[dev]' -c $(PINS)
	@# Fail loudly here, not halfway through a test run, when an install step is missing.
	$(BIN)/python -c "import torch, scrapy, dask.distributed, prefect, pyarrow, PIL, ftfy, py3langid, tokenizers, \
	safetensors, duckdb, typer, webdataset, numba, pdqhash, s3fs, moto.server; from training.openclip_compat import import_open_clip; \
	oc = import_open_clip(); print('mmpipe environment OK: torch', torch.__version__, 'open_clip', oc.__version__)"
	$(BIN)/mmpipe --help >/dev/null
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mmpipe demo

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_crawl.py
	$(BIN)/python benchmarks/bench_clean.py
	$(BIN)/python benchmarks/bench_train.py
	$(BIN)/python benchmarks/bench_e2e.py

clean-venv:
	rm -rf $(VENV)
