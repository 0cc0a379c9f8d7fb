# pebr-lit: set-up, demo and tests. `make demo` and `make test` work on a fresh machine.
PY      ?= .venv/bin/python
export HF_HUB_OFFLINE = 1
export TOKENIZERS_PARALLELISM = false

.PHONY: venv demo demo-steps report lint test test-fast clean

venv: .venv/.installed

# torch/torchvision first and pinned: the lightest pair that imports together here (see docs/install.md).
# --no-compile: pip would byte-compile every module of the 6 GB install (~30 s of CPU); Python compiles
# the few the demo imports on first use instead.
.venv/.installed: pyproject.toml
	python3 -m venv .venv
	.venv/bin/pip install -q --upgrade pip
	.venv/bin/pip install -q --no-compile torch==2.14.1 torchvision==0.29.1
	.venv/bin/pip install -q --no-compile -e '.[dev]'
	touch $@

# The whole recipe on the tiny model in runs/demo (assets -> data -> CLIP -> SFT -> sampling -> tiers ->
# stage 1 -> stage 2 -> evaluations + ablations -> report.md). Rerun after an interruption to continue.
demo: venv
	$(PY) -m pebr_lit.demo

# Print the demo's steps and the plain command each one runs.
demo-steps: venv
	$(PY) -m pebr_lit.demo --list

report: venv
	$(PY) -m pebr_lit.demo.report --run runs/demo

# Lint and formatting (ruff, configured in pyproject.toml) come first: a style slip fails as fast as a test.
lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# The full CPU suite (GPU tests skip themselves without CUDA). test-fast leaves out `slow` tests.
test: lint
	$(PY) -m pytest -q

test-fast: lint
	$(PY) -m pytest -m "not slow" -q

clean:
	rm -rf runs/demo
