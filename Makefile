# pebr-lit: set-up, demo and tests. `make demo` and `make test` work on a fresh machine.
PY      ?= .venv/bin/python
export HF_HUB_OFFLINE = 1
export TOKENIZERS_PARALLELISM = false

.PHONY: venv demo demo-steps report test test-fast clean

venv: .venv/.installed

# torch/torchvision first and pinned: the lightest pair that imports together here (see README).
.venv/.installed: pyproject.toml
	python3 -m venv .venv
	.venv/bin/pip install -q --upgrade pip
	.venv/bin/pip install -q torch==2.14.1 torchvision==0.29.1
	.venv/bin/pip install -q -e '.[dev]'
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

# The full CPU suite (GPU tests skip themselves without CUDA). test-fast leaves out `slow` tests.
test: venv
	$(PY) -m pytest -q

test-fast: venv
	$(PY) -m pytest -m "not slow" -q

clean:
	rm -rf runs/demo
