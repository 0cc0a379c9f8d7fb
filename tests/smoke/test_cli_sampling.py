"""Smoke: difficulty sampling through the CLI resumes exactly, also after kill -9 in the middle of a run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli import main
from pebr_lit.data.records import load_records
from pebr_lit.data.samples import shard_path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "demo" / "sample.yaml"


def _args(assets, records: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--config",
        str(CONFIG),
        "--model.init_args.init_from=null",
        f"--model.init_args.policy.init_args.model_name_or_path={assets['vlm']}",
        f"--data.init_args.predict_files=[{records}]",
        "--data.init_args.eval_batch_size=2",
        "--model.init_args.eval_sampling.num_samples=2",
        "--model.init_args.eval_sampling.max_new_tokens=4",
        f"--trainer.callbacks.output_path={out}",
        f"--trainer.default_root_dir={out.parent}",
        "--trainer.enable_progress_bar=false",
        *extra,
    ]


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _assert_complete(out: Path, records: Path) -> list[dict]:
    rows = _rows(out)
    assert [r["qid"] for r in rows] == [r.qid for r in load_records(records)]  # each once, in input order
    assert all(r["n"] == 2 and r["n_correct"] == sum(r["correct"]) and len(r["responses"]) == 2 for r in rows)
    assert not list(out.parent.glob("samples.rank*.jsonl"))  # shards merged away
    return rows


def test_rerun_samples_only_what_is_missing(assets, world, tmp_path):
    records, out = world / "val.jsonl", tmp_path / "samples.jsonl"
    main(["predict", *_args(assets, records, out, "--trainer.limit_predict_batches=2")])
    first = _rows(out)
    assert len(first) == 4  # 2 batches x 2 questions, merged although incomplete

    cli = main(["predict", *_args(assets, records, out)])
    assert cli.datamodule.predict_skip_qids == {r["qid"] for r in first}  # skipped before generation
    assert len(cli.datamodule.predict_dataloader().dataset) == 16 - 4
    rows = _assert_complete(out, records)
    assert rows[:4] == first  # rows written earlier are unchanged

    main(["predict", *_args(assets, records, out)])  # finished: samples nothing, changes nothing
    assert _rows(out) == rows


def test_existing_results_of_other_questions_are_refused(assets, world, tmp_path):
    out = tmp_path / "samples.jsonl"
    out.write_text(json.dumps({"qid": "elsewhere-1", "n": 2, "n_correct": 0}) + "\n")
    with pytest.raises(ValueError, match="another question set"):
        main(["predict", *_args(assets, world / "val.jsonl", out)])


def test_a_different_number_of_samples_per_question_is_refused(assets, world, tmp_path):
    out = tmp_path / "samples.jsonl"
    out.write_text(json.dumps({"qid": "val-000000", "n": 3, "n_correct": 0}) + "\n")
    with pytest.raises(ValueError, match=r"rows on disk have n=\[3\].*this run samples n=2"):
        main(["predict", *_args(assets, world / "val.jsonl", out)])


def test_kill_9_mid_run_then_rerun_gives_every_question_exactly_once(assets, world, tmp_path):
    records, out = world / "val.jsonl", tmp_path / "samples.jsonl"
    shard = shard_path(out, 0)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "cli.py"), "predict", *_args(assets, records, out)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 240
        while not (shard.is_file() and shard.read_bytes().count(b"\n") >= 4):
            assert proc.poll() is None, (
                f"sampling ended before it could be killed:\n{proc.stderr.read().decode()[-2000:]}"
            )
            assert time.monotonic() < deadline, "no rows written within 240 s"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    complete = shard.read_bytes()
    complete = complete[: complete.rfind(b"\n") + 1]
    before = [json.loads(line) for line in complete.splitlines()]
    assert 4 <= len(before) < 16 and not out.exists()  # killed mid-run: nothing merged yet
    with open(shard, "ab") as f:  # what a kill inside write() leaves: a row without its newline
        f.write(json.dumps({"qid": "val-000015", "n": 2, "n_correct": 2})[:25].encode())

    main(["predict", *_args(assets, records, out)])
    rows = _assert_complete(out, records)
    by_qid = {r["qid"]: r for r in rows}
    assert all(by_qid[r["qid"]] == r for r in before)  # rows from before the kill are unchanged


def _run_ddp(assets, records: Path, out: Path) -> str:
    """``cli.py predict`` on 2 CPU processes (gloo); returns the combined output."""
    strategy = {
        "class_path": "lightning.pytorch.strategies.DDPStrategy",
        "init_args": {"process_group_backend": "gloo"},
    }
    cmd = [
        sys.executable,
        "cli.py",
        "predict",
        *_args(assets, records, out),
        "--trainer.devices=2",
        f"--trainer.strategy={json.dumps(strategy)}",
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "MASTER_PORT")}
    env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", PYTHONWARNINGS="ignore")
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"DDP sampling failed (rc {done.returncode}):\n{done.stderr[-4000:]}"
    log = done.stderr + done.stdout
    assert "MEMBER: 2/2" in log
    return log


@pytest.mark.slow
def test_two_processes_resume_from_every_shard_and_merge_each_question_once(assets, world, tmp_path):
    records, out = world / "val.jsonl", tmp_path / "samples.jsonl"
    main(["predict", *_args(assets, records, out, "--trainer.limit_predict_batches=2")])  # 4 rows, merged
    # A shard left by an earlier run with four processes, its last row torn by a kill.
    stale = {
        "qid": "val-000010",
        "n": 2,
        "n_correct": 1,
        "pass_rate": 0.5,
        "correct": [1, 0],
        "responses": ["a", "b"],
        "format": [0, 0],
    }
    shard_path(out, 3).write_text(json.dumps(stale) + "\n" + '{"qid": "val-000011", "n"')
    before = [*_rows(out), stale]

    assert "5 of 16 questions already" in _run_ddp(assets, records, out)  # the merged file and the stale shard
    rows = _assert_complete(out, records)  # 11 sampled by 2 ranks (6 + 5, no padding repeats), merged
    by_qid = {r["qid"]: r for r in rows}
    assert all(by_qid[r["qid"]] == r for r in before)

    # One question left: rank 1 gets no batch at all and must still meet rank 0 at the merge.
    out.write_text("".join(json.dumps(r) + "\n" for r in rows[:-1]))
    assert "sampling the remaining 1." in _run_ddp(assets, records, out)
    again = _assert_complete(out, records)
    assert again[:-1] == rows[:-1]


def test_rank_slices_cover_every_question_once_and_may_be_empty():
    from pebr_lit.data.loaders import RankSlice

    data = list(range(5))
    assert [list(RankSlice(data, 2, r)) for r in (0, 1)] == [[0, 2, 4], [1, 3]]
    assert [len(RankSlice(data, 2, r)) for r in (0, 1)] == [3, 2]
    # One question left for two processes (a resumed run): rank 1 gets nothing instead of a repeat.
    assert [list(RankSlice([7], 2, r)) for r in (0, 1)] == [[0], []]
