"""Smoke: ``python cli.py test --config configs/eval/...`` runs the tiny policy on benchmark fixtures end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cli import main
from pebr_lit.format.response import INSTRUCTION
from tests.helpers.benchmark_files import (
    hallusion_row,
    hf_image,
    mathvista_row,
    write_parquet,
)

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "eval"


@pytest.fixture
def fixtures(tmp_path: Path) -> dict[str, Path]:
    mathvista = write_parquet(
        tmp_path / "MathVista" / "testmini-00000-of-00001.parquet",
        [
            mathvista_row("1", "multi_choice", "8/11", ["3/11", "8/11", "6/11"]),
            mathvista_row("2", "free_form", "1.5", answer_type="float", precision=1.0),
            mathvista_row("3", "free_form", "4", answer_type="integer"),
        ],
    )
    hallusion = write_parquet(
        tmp_path / "HallusionBench" / "image-00000-of-00001.parquet",
        [
            hallusion_row("VD", "chart", "0", "0", "0", "1"),
            hallusion_row("VD", "chart", "0", "1", "0", "0"),
            hallusion_row("VS", "map", "1", "1", "0", "1"),
            hallusion_row("VS", "map", "1", "2", "0", "0"),
        ],
    )
    return {"mathvista": mathvista, "hallusionbench": hallusion}


def _args(config: str, assets, out: Path, *extra: str) -> list[str]:
    return [
        "test",
        "--config",
        str(CONFIGS / config),
        f"--model.init_args.policy.init_args.model_name_or_path={assets['vlm']}",
        "--model.init_args.policy.init_args.dtype=float32",
        "--model.init_args.sampling.max_new_tokens=16",
        "--data.init_args.batch_size=2",
        "--data.init_args.num_workers=0",
        "--trainer.accelerator=cpu",
        "--trainer.enable_progress_bar=false",
        f"--trainer.logger.init_args.save_dir={out}",
        *extra,
    ]


def test_single_benchmark_config(assets, fixtures, tmp_path):
    cli = main(
        _args(
            "mathvista.yaml",
            assets,
            tmp_path / "runs",
            f"--model.init_args.benchmarks.init_args.path={fixtures['mathvista']}",
        )
    )
    out = Path(cli.trainer.log_dir)
    assert out == tmp_path / "runs" / "mathvista" / "version_0"
    rows = [json.loads(line) for line in (out / "mathvista.jsonl").read_text().splitlines()]
    assert [r["qid"] for r in rows] == ["1", "2", "3"]  # file order
    assert all(
        isinstance(r["response"], str) and r["response_tokens"] <= 16 and r["correct"] in (True, False) for r in rows
    )
    result = json.loads((out / "mathvista.json").read_text())
    assert result["metrics"]["n"] == 3
    assert result["metrics"]["accuracy"] == pytest.approx(sum(r["correct"] for r in rows) / 3)
    # The running torchmetrics accuracy and the aggregate agree.
    assert float(cli.trainer.logged_metrics["test/mathvista/accuracy"]) == pytest.approx(result["metrics"]["accuracy"])
    assert "## mathvista" in (out / "results.md").read_text()
    settings = json.loads((out / "results.json").read_text())["settings"]
    assert settings["sampling"]["do_sample"] is False
    # which prompt made the answers: the default, pebr-lit's instruction before each benchmark prompt
    assert settings["prompt"] == {
        "class": "pebr_lit.format.prompts.InstructionPrompt",
        "image_marker": "<image>",
        "instruction": INSTRUCTION,
    }


def test_benchmark_list_config(assets, fixtures, tmp_path):
    benchmarks = json.dumps(
        [
            {
                "class_path": "pebr_lit.eval.benchmarks.mathvista.MathVista",
                "init_args": {"path": str(fixtures["mathvista"]), "limit": 2},
            },
            {
                "class_path": "pebr_lit.eval.benchmarks.hallusionbench.HallusionBench",
                "init_args": {"path": str(fixtures["hallusionbench"])},
            },
        ]
    )
    out = tmp_path / "results"
    cli = main(
        _args(
            "all.yaml",
            assets,
            tmp_path / "runs",
            f"--model.init_args.benchmarks={benchmarks}",
            f"--model.init_args.output_dir={out}",
            '--model.init_args.reference_scores={"hallusionbench.qAcc": 50.0}',
        )
    )
    logged = cli.trainer.logged_metrics
    expected = {
        "test/mathvista/accuracy",
        "test/hallusionbench/accuracy",
        "test/hallusionbench/qAcc",
        "test/hallusionbench/fAcc",
    }
    assert expected <= set(logged)
    results = json.loads((out / "results.json").read_text())["benchmarks"]
    assert results["mathvista"]["metrics"]["n"] == 2 and results["hallusionbench"]["metrics"]["n"] == 4
    assert (
        results["hallusionbench"]["metrics"]["questions"] == 2 and results["hallusionbench"]["metrics"]["figures"] == 4
    )
    summary = (out / "results.md").read_text()
    assert "| mathvista | 2 |" in summary and "| hallusionbench | 4 |" in summary
    assert "| hallusionbench (reference qAcc) | - | - | qAcc 50.0; this run" in summary
    with pytest.raises(
        ValueError, match=r"(^|- )EvalModule\.reference_scores=\['mathvist'\]: these keys name no benchmark"
    ):
        main(
            _args(
                "all.yaml",
                assets,
                tmp_path / "runs",
                f"--model.init_args.benchmarks={benchmarks}",
                '--model.init_args.reference_scores={"mathvist": 50.0}',
            )
        )
    assert torch.isfinite(torch.tensor(float(logged["test/hallusionbench/accuracy"])))


def test_mmmu_interleaved_images_end_to_end(assets, tmp_path):
    """MMMU rows whose images sit inside the question and options go through collate and generation."""

    def row(n: int, question: str, options: str, images: int) -> dict:
        out = {
            "id": f"validation_Math_{n}",
            "question": question,
            "options": options,
            "explanation": "",
            "img_type": "[]",
            "answer": "A",
            "topic_difficulty": "Easy",
            "question_type": "multiple-choice",
            "subfield": "x",
        }
        out.update({f"image_{k}": hf_image((40 * k, 0, 0)) if k <= images else None for k in range(1, 8)})
        return out

    write_parquet(
        tmp_path / "MMMU" / "Math" / "validation-00000-of-00001.parquet",
        [
            row(1, "Is <image 1> larger than <image 2>?", "['yes', 'no']", 2),
            row(2, "Which matches <image 1>?", "['<image 2>', '<image 3>']", 3),
            row(3, "What is shown?", "['a', 'b']", 1),  # no reference: the image comes first
        ],
    )
    cli = main(
        _args(
            "mmmu.yaml", assets, tmp_path / "runs", f"--model.init_args.benchmarks.init_args.path={tmp_path / 'MMMU'}"
        )
    )
    rows = [json.loads(line) for line in (Path(cli.trainer.log_dir) / "mmmu.jsonl").read_text().splitlines()]
    assert [r["qid"] for r in rows] == ["validation_Math_1", "validation_Math_2", "validation_Math_3"]
    assert json.loads((Path(cli.trainer.log_dir) / "mmmu.json").read_text())["metrics"]["n"] == 3


def test_missing_benchmark_file_is_a_clear_error(assets, tmp_path):
    with pytest.raises(Exception, match="no such file or directory.*AI4Math/MathVista"):
        main(
            _args(
                "mathvista.yaml",
                assets,
                tmp_path / "runs",
                f"--model.init_args.benchmarks.init_args.path={tmp_path / 'nope'}",
            )
        )


def test_judge_reads_every_answer_from_config(assets, fixtures, tmp_path):
    """A judge endpoint from the command line: it reads each response (here: the right answers), the rules grade
    its reading."""
    from tests.helpers.judge_server import JudgeServer

    truths = {"question 1?": "B", "question 2?": "1.5", "question 3?": "4"}
    reply = lambda message: next((a for q, a in truths.items() if q in message), "OK")  # noqa: E731
    with JudgeServer(reply) as server:
        judge = json.dumps(
            {
                "model": "stub-judge",
                "base_url": server.url,
                "api_key_env": None,
                "mode": "always",
                "cache": str(tmp_path / "judge.jsonl"),
            }
        )
        cli = main(
            _args(
                "mathvista.yaml",
                assets,
                tmp_path / "runs",
                f"--model.init_args.benchmarks.init_args.path={fixtures['mathvista']}",
                f"--model.init_args.judge={judge}",
            )
        )
    out = Path(cli.trainer.log_dir)
    rows = [json.loads(line) for line in (out / "mathvista.jsonl").read_text().splitlines()]
    assert [r["judge_answer"] for r in rows] == ["B", "1.5", "4"] and all(r["correct"] for r in rows)
    metrics = json.loads((out / "mathvista.json").read_text())["metrics"]
    assert metrics["accuracy"] == 1.0 and metrics["judged"] == 3 and metrics["judge_failed"] == 0
    assert metrics["judge_flipped"] == sum(not r["rule_correct"] for r in rows)
    logged = cli.trainer.logged_metrics
    assert float(logged["test/mathvista/judged_accuracy"]) == 1.0
    # The running accuracy stays the rules' verdicts (logged while answers are generated).
    assert float(logged["test/mathvista/accuracy"]) == pytest.approx(metrics["rule_accuracy"])
    assert metrics["rule_accuracy"] == pytest.approx(sum(r["rule_correct"] for r in rows) / 3)
    assert json.loads((out / "results.json").read_text())["settings"]["judge"]["model"] == "stub-judge"
    assert len((tmp_path / "judge.jsonl").read_text().splitlines()) == 3


def test_judge_naming_no_benchmark_of_the_run_is_refused(assets, fixtures, tmp_path):
    judge = json.dumps({"model": "m", "benchmarks": ["mathvsta"]})  # a typo
    with pytest.raises(
        ValueError,
        match=r"(^|- )EvalModule\.judge\.benchmarks=\['mathvsta'\]: "
        r"names none of this run's benchmarks \['mathvista'\]",
    ):
        main(
            _args(
                "mathvista.yaml",
                assets,
                tmp_path / "runs",
                f"--model.init_args.benchmarks.init_args.path={fixtures['mathvista']}",
                f"--model.init_args.judge={judge}",
            )
        )


def test_an_interrupted_evaluation_resumes_from_its_answers(assets, fixtures, tmp_path):
    out = tmp_path / "eval"

    def args(*extra: str) -> list[str]:
        return _args(
            "mathvista.yaml",
            assets,
            tmp_path / "runs",
            f"--model.init_args.benchmarks.init_args.path={fixtures['mathvista']}",
            f"--model.init_args.output_dir={out}",
            *extra,
        )

    main(args())
    answers = out / "answers" / "mathvista.rank0.jsonl"
    first = [json.loads(line) for line in answers.read_text().splitlines()]
    assert [r["qid"] for r in first] == ["1", "2", "3"] and (out / "answers" / "settings.json").is_file()
    # A run that died after question 1, while writing question 2: its answer marked so that reuse shows.
    kept = {**first[0], "response": "REUSED", "correct": True}
    answers.write_text(json.dumps(kept) + "\n" + json.dumps(first[1])[:20])
    main(args())
    rows = [json.loads(line) for line in (out / "mathvista.jsonl").read_text().splitlines()]
    assert [r["qid"] for r in rows] == ["1", "2", "3"]
    assert rows[0]["response"] == "REUSED" and [r["response"] for r in rows[1:]] == [r["response"] for r in first[1:]]
    result = json.loads((out / "mathvista.json").read_text())["metrics"]
    assert result["accuracy"] == pytest.approx((1 + rows[1]["correct"] + rows[2]["correct"]) / 3)
    # Everything answered: nothing generated; other sampling settings: refused; resume false: all again.
    main(args())
    assert json.loads((out / "mathvista.jsonl").read_text().splitlines()[0])["response"] == "REUSED"
    with pytest.raises(ValueError, match=r"answers made with other settings \(sampling differ"):
        main(args("--model.init_args.sampling.max_new_tokens=8"))
    main(args("--model.init_args.sampling.max_new_tokens=8", "--model.init_args.resume=false"))
    rows = [json.loads(line) for line in (out / "mathvista.jsonl").read_text().splitlines()]
    assert "REUSED" not in {r["response"] for r in rows} and max(r["response_tokens"] for r in rows) <= 8


def test_a_stage_checkpoint_is_evaluated_by_init_from_or_ckpt_path(assets, world, fixtures, tmp_path):
    """The weights a stage trained are the ones evaluated, loaded either way."""
    sft = main(
        [
            "fit",
            "--config",
            str(CONFIGS.parent / "demo" / "sft.yaml"),
            f"--model.init_args.policy.init_args.model_name_or_path={assets['vlm']}",
            f"--data.init_args.train_files=[{world / 'train.jsonl'}]",
            "--data.init_args.val_files=null",
            "--data.init_args.batch_size=4",
            "--trainer.max_steps=2",
            "--trainer.limit_val_batches=0",
            "--trainer.enable_progress_bar=false",
            f"--trainer.logger.init_args.save_dir={tmp_path / 'sft'}",
            f"--trainer.default_root_dir={tmp_path / 'sft'}",
        ]
    )
    ckpt = next((tmp_path / "sft").rglob("last.ckpt"))
    trained = {k: v.clone() for k, v in sft.model.policy.model.state_dict().items()}
    base = main(
        _args(
            "mathvista.yaml",
            assets,
            tmp_path / "base",
            f"--model.init_args.benchmarks.init_args.path={fixtures['mathvista']}",
        )[1:],
        run=False,
    ).model.policy.model.state_dict()  # [1:]: no subcommand without run
    assert any(not torch.equal(base[k], v) for k, v in trained.items()), "SFT changed no weight: nothing to check"
    data = f"--model.init_args.benchmarks.init_args.path={fixtures['mathvista']}"
    by_init = main(_args("mathvista.yaml", assets, tmp_path / "a", data, f"--model.init_args.init_from={ckpt}"))
    by_ckpt = main(_args("mathvista.yaml", assets, tmp_path / "b", data, f"--ckpt_path={ckpt}"))
    for cli in (by_init, by_ckpt):
        for name, value in cli.model.policy.model.state_dict().items():
            torch.testing.assert_close(value, trained[name], msg=f"{name} is not the stage's weight")
    # Answers of one checkpoint are never reused for another.
    out = Path(by_ckpt.trainer.log_dir)
    assert json.loads((out / "results.json").read_text())["settings"]["ckpt_path"] == str(ckpt)
    with pytest.raises(ValueError, match=r"other settings \(ckpt_path, init_from differ"):
        main(
            _args(
                "mathvista.yaml",
                assets,
                tmp_path / "c",
                data,
                f"--model.init_args.init_from={ckpt}",
                f"--model.init_args.output_dir={out}",
            )
        )
