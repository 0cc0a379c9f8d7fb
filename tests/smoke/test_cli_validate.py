"""``python -m pebr_lit.data.validate`` runs as a command, and ``cli.py`` stops on a missing data file in one line,
before any model is built."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[2]


def test_the_module_runs_as_a_command(tmp_path):
    Image.new("RGB", (4, 40)).save(tmp_path / "thin.png")
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"qid": "a", "problem": "p", "answer": "1", "images": ["thin.png"]}) + "\n")
    done = subprocess.run([sys.executable, "-m", "pebr_lit.data.validate", str(data)], capture_output=True, text=True)
    assert done.returncode == 1, done.stderr
    assert f"{data}:row 1: field 'images[0]': 4x40 px: shortest side under 28 px" in done.stdout
    assert (tmp_path / "d.bad_records.jsonl").is_file()


def test_cli_stops_on_a_missing_data_file_before_building_the_model(tmp_path):
    # The demo's model folder does not exist here either: reaching the model would raise its own error instead.
    args = ["fit", "--config", "configs/demo/sft.yaml", f"--data.init_args.train_files=[{tmp_path / 'gone.jsonl'}]"]
    args += [f"--data.init_args.{name}=null" for name in ("val_files", "test_files", "predict_files")]
    done = subprocess.run([sys.executable, "cli.py", *args], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    (line,) = [x for x in done.stderr.splitlines() if x.startswith("error:")]
    assert line.startswith(f"error: data.init_args.train_files[0] '{tmp_path / 'gone.jsonl'}': no such file")
    assert "Traceback" not in done.stderr
