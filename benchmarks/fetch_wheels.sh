#!/usr/bin/env bash
# Download here the wheels benchmarks/gpu_check.sh installs on the GPU machine (Python 3.12, x86_64, no registry),
# into wheels/ (gitignored; carried by the device call), and print their sizes: the carried tree is capped at
# 64 MiB, and these come to ~45 MiB (bitsandbytes alone 41 MiB).
#
#   bash benchmarks/fetch_wheels.sh            # PYTHON=... to pick the pip; WHEELS=... for another folder
#
# The GPU image already has torch, torchvision, transformers, peft, lightning, timm, tokenizers, safetensors,
# huggingface_hub, regex, tqdm, PyYAML, sympy and typing_extensions; this adds what it lacks, pinned as
# pyproject.toml pins them (dependencies of dependencies at the versions that pass `pip check` here).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PY=${PYTHON:-python3}
WHEELS=${WHEELS:-wheels}
WANTED=(
  bitsandbytes==0.50.2                                           # QLoRA's 4-bit layers
  open_clip_torch==3.3.0 ftfy==6.3.1 wcwidth==0.9.5              # the CLIP scorers and the tiny test CLIP
  jsonargparse==4.53.0 docstring_parser==0.18.0 typeshed_client==2.15.0 omegaconf==2.4.0  # cli.py ([signatures])
  mathruler==0.1.0 pylatexenc==2.11                              # the authors' grader
  math-verify==0.9.0 latex2sympy2_extended==1.11.0 antlr4-python3-runtime==4.13.2  # pebr-lit's grader
)
PLATFORMS=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 \
  manylinux2014_x86_64 manylinux1_x86_64 any; do
  PLATFORMS+=(--platform "$p")
done
mkdir -p "$WHEELS"
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${PLATFORMS[@]}" -d "$WHEELS" "${WANTED[@]}"
ls -l "$WHEELS"/*.whl | awk '{printf "%10.2f MiB  %s\n", $5 / 1048576, $NF}'
total=$(du -cb "$WHEELS"/*.whl | tail -1 | cut -f1)
printf '%10.2f MiB  total (%s wheels; the device call carries at most 64 MiB with the tree)\n' \
  "$(echo "$total / 1048576" | bc -l)" "$(ls "$WHEELS"/*.whl | wc -l)"
if ((total > 60 * 1048576)); then
  echo "wheels/ is over 60 MiB: with the working tree it may pass the 64 MiB carry limit; remove old versions" >&2
  exit 1
fi
