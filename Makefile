# pebr-lit: set-up, demo and tests. `make demo` and `make test` work on a fresh machine.
PY      ?= .venv/bin/python
# The demo configs name runs/demo/... paths, so the run directory is fixed.
RUN     := runs/demo
SEED    ?= 0
# Synthetic world sizes: SFT reads 3000 steps x 16 = 48k examples, i.e. two passes over 24k records.
TRAIN_N ?= 24000
VAL_N   ?= 512
TEST_N  ?= 512
# RL pool for difficulty sampling (rl.jsonl, its own seed stream): 8 answers per question.
RL_N    ?= 512
# CLIP training steps (batch 64): ~0.06 s each on 2 threads; held-out 64-way retrieval ~0.75 at 400.
CLIP_STEPS ?= 400
export HF_HUB_OFFLINE = 1
export TOKENIZERS_PARALLELISM = false

.PHONY: venv assets data clip sft eval sample tiers demo test test-fast clean

venv: .venv/.installed

# torch/torchvision first and pinned: the lightest pair that imports together here (see README).
.venv/.installed: pyproject.toml
	python3 -m venv .venv
	.venv/bin/pip install -q --upgrade pip
	.venv/bin/pip install -q torch==2.14.1 torchvision==0.29.1
	.venv/bin/pip install -q -e '.[dev]'
	touch $@

assets: venv
	$(PY) -m pebr_lit.tiny --out $(RUN)/assets --seed $(SEED)

data: venv
	$(PY) -m pebr_lit.data.synthetic --out $(RUN)/data --train $(TRAIN_N) --val $(VAL_N) --test $(TEST_N) --seed $(SEED)

# The tiny CLIP trained on the image-description pairs (~1 min on 2 cores), so stage 1's CLIP reward
# measures something; prints held-out retrieval before and after. Skips itself when already done.
clip: assets data
	$(PY) -m pebr_lit.train_clip --clip $(RUN)/assets/clip --records $(RUN)/data/train.jsonl \
		--val-records $(RUN)/data/val.jsonl --out $(RUN)/clip --steps $(CLIP_STEPS) --batch-size 64 --lr 1e-3 --threads 2

# Finished stages leave a DONE marker; an interrupted one resumes from its last checkpoint.
$(RUN)/sft/DONE: | venv
	$(PY) cli.py fit --config configs/demo/sft.yaml --ckpt_path last
	touch $@

sft: assets data $(RUN)/sft/DONE

# Held-out format rate and accuracy of the SFT policy, next to the blind (image-ignored) baseline.
eval: sft
	$(PY) cli.py test --config configs/demo/sft.yaml --ckpt_path $(RUN)/sft/checkpoints/last.ckpt
	$(PY) -m pebr_lit.eval.baselines --train $(RUN)/data/train.jsonl --test $(RUN)/data/test.jsonl

# Difficulty sampling with the SFT policy; resumable: a rerun samples only the questions not yet written.
$(RUN)/data/rl.jsonl: | venv
	$(PY) -m pebr_lit.data.synthetic --out $(RUN)/data --train 0 --val 0 --test 0 --rl $(RL_N) --seed $(SEED)

$(RUN)/sampling/DONE: | venv
	$(PY) cli.py predict --config configs/demo/sample.yaml
	touch $@

sample: sft $(RUN)/data/rl.jsonl $(RUN)/sampling/DONE

# Pass rates -> Easy / Medium / Hard record files (the stage configs read tiers/easy.jsonl, medium.jsonl).
tiers: sample
	$(PY) -m pebr_lit.data.tiers --samples $(RUN)/sampling/samples.jsonl --records $(RUN)/data/rl.jsonl --out $(RUN)/tiers

demo: venv assets data sft eval

# The full CPU suite (GPU tests skip themselves without CUDA). test-fast leaves out `slow` tests.
test: venv
	$(PY) -m pytest -q

test-fast: venv
	$(PY) -m pytest -m "not slow" -q

clean:
	rm -rf $(RUN)
