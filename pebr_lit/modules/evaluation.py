"""Benchmark evaluation: answer every benchmark question, score it by the benchmark's rules, write the results.

``python cli.py test --config configs/eval/<benchmark>.yaml``. Each test batch of prompts is answered
with ``sampling`` — by default greedy decoding of up to 2048 new tokens, VLMEvalKit's Qwen2.5-VL
setting (the harness behind the paper's numbers); the authors' validation during RL samples at
temperature 0.5 instead, which ``sampling`` can select. Each response is scored by its benchmark
adapter, and a running accuracy per benchmark is logged as ``test/<name>/accuracy`` (a torchmetrics
``MeanMetric``, synced across processes, shown on the progress bar). At the end of the run the scored
rows of every process are gathered, each adapter computes its official numbers and breakdowns, the
headline metrics are logged as ``test/<name>/<metric>``, and rank 0 writes JSON, JSONL and markdown
(``eval.results``) to ``output_dir`` or the logger's run directory. With a ``judge``
(``eval.judge``), each process first has the judge read its own answers (the rules grade the
reading); the running accuracy stays the rules' and ``test/<name>/judged_accuracy`` is logged too.

Left out on purpose: reading benchmark files and scoring rules (``eval.benchmarks``), prompt batches
(``eval.datamodule``), and any training.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torchmetrics import MeanMetric

from pebr_lit.eval.answer_log import AnswerLog
from pebr_lit.eval.benchmarks.base import Benchmark, BenchmarkItem
from pebr_lit.eval.cutoffs import response_counts
from pebr_lit.eval.judge import AnswerJudge, judge_rows, judge_stats
from pebr_lit.eval.results import summary_markdown, write_results
from pebr_lit.policy.checkpoint import check_checkpoint_keys, init_policy_from
from pebr_lit.policy.settings import SamplingSettings
from pebr_lit.policy.wrapper import PolicyWrapper
from pebr_lit.rollout import HFGenerate, RolloutEngine


class EvalModule(L.LightningModule):
    """Generate, score and aggregate answers on a list of benchmarks (one test DataLoader each).

    Args:
        policy: The policy to evaluate; its LoRA settings must match the checkpoint's when ``init_from`` has an adapter.
        benchmarks: Benchmark adapters to run, in order (``pebr_lit.eval.benchmarks.*``); names must differ.
        init_from: Lightning checkpoint of a pebr-lit stage whose policy weights are evaluated; null = the policy
            as loaded.
        sampling: How answers are generated (one per question); null = greedy, up to 2048 new tokens.
        output_dir: Folder for the result files; null = the logger's run directory.
        judge: Optional answer extraction by a judge model behind an OpenAI-compatible endpoint
            (``eval.judge.AnswerJudge``); null = rules only.
        resume: Reuse the answers an interrupted run left in the output directory (``answers/``) and generate
            only the rest; false = answer everything again.
        rollout_engine: Where answers are generated; null = HFGenerate() (the policy's own generate). An sglang
            engine gets the evaluated weights once, at the start.
        reference_scores: Published scores in percent to print beside this run's (e.g. the paper's table):
            {benchmark: accuracy} or {"benchmark.metric": value}.
    """

    def __init__(
        self,
        policy: PolicyWrapper,
        benchmarks: list[Benchmark],
        init_from: str | None = None,
        sampling: SamplingSettings | None = None,
        output_dir: str | None = None,
        judge: AnswerJudge | None = None,
        resume: bool = True,
        rollout_engine: RolloutEngine | None = None,
        reference_scores: dict[str, float] | None = None,
    ) -> None:
        super().__init__()
        names = [b.name for b in benchmarks]
        if not benchmarks:
            raise ValueError(
                "EvalModule.benchmarks=[]: is empty. List at least one benchmark adapter (see configs/eval/)."
            )
        if len(set(names)) != len(names):
            raise ValueError(
                f"EvalModule.benchmarks={names!r}: the names repeat. Give each entry a distinct `name` "
                "(e.g. mathvista_mini, mathvista_full)."
            )
        self.sampling = sampling or SamplingSettings(do_sample=False, max_new_tokens=2048)
        if self.sampling.num_samples != 1:
            raise ValueError(
                f"EvalModule.sampling.num_samples={self.sampling.num_samples!r}: benchmarks score one answer per "
                "question. Set sampling.num_samples: 1."
            )
        self.policy = policy
        self.benchmarks = list(benchmarks)
        self.init_from = init_from
        self.output_dir = output_dir
        self.judge = judge
        self.resume = resume
        self.rollout_engine = rollout_engine if rollout_engine is not None else HFGenerate()
        self.reference_scores = dict(reference_scores or {})
        if stray := sorted(k for k in self.reference_scores if k.partition(".")[0] not in names):
            raise ValueError(
                f"EvalModule.reference_scores={stray!r}: these keys name no benchmark of this run {names}. "
                "Key each score by a listed benchmark: <name> or <name>.<metric>."
            )
        self._log: AnswerLog | None = None
        self._previous: list[dict[int, dict[str, Any]]] = [{} for _ in names]  # index -> row from an earlier run
        if judge is not None and judge.benchmarks is not None:
            if not set(judge.benchmarks) & set(names):
                raise ValueError(
                    f"EvalModule.judge.benchmarks={judge.benchmarks!r}: names none of this run's benchmarks {names}. "
                    "List some of them, or null to judge every benchmark."
                )
            if unknown := sorted(set(judge.benchmarks) - set(names)):
                rank_zero_warn(f"judge.benchmarks names {unknown}, not in this run ({names}): left out.")
        self.strict_loading = False  # a --ckpt_path stage checkpoint holds trained weights only
        if init_from:
            init_policy_from(self.policy, init_from)
        self.accuracy = torch.nn.ModuleDict({name: MeanMetric() for name in names})
        self._rows: list[list[dict[str, Any]]] = [[] for _ in names]
        self._items: list[list[BenchmarkItem]] = [
            [] for _ in names
        ]  # this process's items, beside _rows (for the judge)
        #: Per benchmark, the aggregate of the last test run (metrics and breakdowns), for callers and tests.
        self.results: dict[str, dict[str, Any]] = {}

    @property
    def processor(self) -> Any:
        """The policy's processor, for the DataModule (``data.contracts.ProcessorSource``; linked by ``cli.py``)."""
        return self.policy.processor

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # A stage checkpoint may hold more than the policy (e.g. a GRPO module's other parts).
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k.startswith("policy.")}
        check_checkpoint_keys(self, checkpoint)

    def setup(self, stage: str) -> None:
        self._log = None  # opened once the weights are known (after any --ckpt_path restore): see ``answered``

    def _open_answer_log(self) -> AnswerLog:
        """Check the answers an earlier run left in the output directory and read them back (every process)."""
        trainer = self.trainer
        # trainer.log_dir is a collective (a broadcast from rank 0): resolved here, on every process, once.
        out = Path(self.output_dir or trainer.log_dir or trainer.default_root_dir)
        log = AnswerLog(out, [b.name for b in self.benchmarks], trainer.global_rank)
        if not self.resume and trainer.is_global_zero:
            shutil.rmtree(log.dir, ignore_errors=True)
        trainer.strategy.barrier("pebr_eval_answers_cleared")
        settings = {k: v for k, v in self._settings().items() if k not in ("world_size", "judge", "reference_scores")}
        log.check_settings(settings, write=trainer.is_global_zero)
        trainer.strategy.barrier("pebr_eval_settings_checked")
        datasets = getattr(trainer.datamodule, "datasets", None)
        if self.resume and datasets:
            self._previous = log.load([[item.qid for item in ds.records] for ds in datasets])
            for bench, previous, ds in zip(self.benchmarks, self._previous, datasets):
                if previous:
                    rank_zero_info(f"{bench.name}: {len(previous)} of {len(ds)} answers reused from {log.dir}")
        return log

    def answered(self, bench: int) -> frozenset[int]:
        """Positions of benchmark ``bench``'s questions answered by an earlier run (not generated again).

        With ``benchmarks``, what ``EvalDataModule`` needs from this module (``data.contracts.BenchmarkSource``).

        The DataModule asks while building its loaders: after setup and any checkpoint restore, so the
        answers are checked against the weights actually evaluated (``--ckpt_path`` included)."""
        if self._log is None:
            self._log = self._open_answer_log()
        return frozenset(self._previous[bench])

    def on_test_start(self) -> None:
        if self._log is None:  # a DataModule that did not ask (see ``answered``)
            self._log = self._open_answer_log()
        self.rollout_engine.sync_weights(self.policy)  # e.g. an sglang engine: the init_from weights

    def on_test_end(self) -> None:
        self.rollout_engine.close()

    def on_test_epoch_start(self) -> None:
        self._rows = [[] for _ in self.benchmarks]
        self._items = [[] for _ in self.benchmarks]

    def test_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        bench = self.benchmarks[dataloader_idx]
        rows = []
        if len(batch["records"]):
            rollout = self.rollout_engine.generate(
                self.policy, batch["prompts"], batch["records"].records, self.sampling
            )
            lengths = rollout.response_mask.sum(dim=1).tolist()  # [B] response tokens, end-of-turn included
            for item, text, n_tokens, cut in zip(batch["records"], rollout.texts, lengths, rollout.truncated.tolist()):
                rows.append(
                    {
                        "index": item.index,
                        "qid": item.qid,
                        "answer": item.answer,
                        **bench.score(text, item),
                        "response": text,
                        "response_tokens": int(n_tokens),
                        "truncated": bool(cut),
                        "meta": item.meta,
                    }
                )
            if self._log is not None:
                self._log.append(dataloader_idx, rows)
        rows += [self._previous[dataloader_idx][item.index] for item in batch["answered"]]
        self._rows[dataloader_idx] += rows
        self._items[dataloader_idx] += [*batch["records"], *batch["answered"]]
        correct = [float(r["correct"]) for r in rows]
        metric = self.accuracy[bench.name]
        metric.update(torch.tensor(correct, device=self.device))
        self.log(
            f"test/{bench.name}/accuracy",
            metric,
            on_step=False,
            on_epoch=True,
            prog_bar=True,
            batch_size=len(correct),
            add_dataloader_idx=False,
        )

    def on_test_epoch_end(self) -> None:
        self._apply_judge()
        rows = self._gather(self._rows)
        self.results, by_name = {}, {}
        for bench, bench_rows in zip(self.benchmarks, rows):
            bench_rows.sort(key=lambda r: r["index"])
            result = bench.aggregate(bench_rows)
            # Cut-off answers usually lack the final-answer section: a high rate means max_new_tokens is too low.
            result["metrics"].update(response_counts(bench_rows))
            result["metrics"]["response_tokens_mean"] = round(
                sum(r["response_tokens"] for r in bench_rows) / max(len(bench_rows), 1)
            )
            result["headline"] = list(bench.headline)
            if self.judge is not None and self.judge.applies_to(bench.name):
                result["metrics"].update(judge_stats(bench_rows))
                self.log(
                    f"test/{bench.name}/judged_accuracy",
                    float(result["metrics"]["accuracy"] or 0.0),
                    rank_zero_only=True,
                    add_dataloader_idx=False,
                )
            self.results[bench.name], by_name[bench.name] = result, bench_rows
            for key in bench.headline:
                value = result["metrics"].get(key)
                if key != "accuracy" and isinstance(value, (int, float)):  # accuracy is the running metric's
                    self.log(f"test/{bench.name}/{key}", float(value), rank_zero_only=True, add_dataloader_idx=False)
        if self.trainer.is_global_zero:
            assert self._log is not None  # opened by answered() or on_test_start
            path = write_results(self._log.out_dir, self.results, by_name, self._settings(), self.reference_scores)
            rank_zero_info(
                f"\n{summary_markdown(self.results, self.reference_scores)}\nresults written to {path.parent}"
            )

    def _apply_judge(self) -> None:
        """Each process re-grades its own rows with the judge's readings (``test/<name>/accuracy`` stays the rules')."""
        if self.judge is None:
            return
        self.judge.for_rank(self.trainer.global_rank, self.trainer.world_size)
        for i, bench in enumerate(self.benchmarks):
            if not self.judge.applies_to(bench.name):
                continue
            rank_zero_info(f"judge {self.judge.model}: reading {bench.name} answers ({self.judge.mode})")
            judge_rows(self.judge, bench, self._rows[i], self._items[i])

    def _gather(self, rows: list[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
        """Every process's rows, per benchmark (each question was answered by exactly one process)."""
        if self.trainer.world_size == 1 or not torch.distributed.is_initialized():
            return [list(r) for r in rows]
        everyone: list[Any] = [None] * self.trainer.world_size
        torch.distributed.all_gather_object(everyone, rows)
        return [[row for rank_rows in everyone for row in rank_rows[i]] for i in range(len(rows))]

    def _settings(self) -> dict[str, Any]:
        datamodule = getattr(self.trainer, "datamodule", None)
        return {
            "policy": self.policy.describe(),
            "init_from": self.init_from,
            "ckpt_path": self.trainer.ckpt_path,
            "sampling": asdict(self.sampling),
            "reference_scores": self.reference_scores,
            "judge": None
            if self.judge is None
            else {
                "model": self.judge.model,
                "base_url": self.judge.base_url,
                "mode": self.judge.mode,
                "benchmarks": self.judge.benchmarks,
            },
            "prompt": _prompt_settings(datamodule),
            "world_size": self.trainer.world_size,
            "benchmarks": {
                b.name: {"class": type(b).__name__, "path": b.path, "limit": b.limit} for b in self.benchmarks
            },
        }


def _prompt_settings(datamodule: Any) -> dict[str, Any] | None:
    """Which prompt made the answers (class, instruction or template path + sha256), for ``settings.json``."""
    prompt = getattr(datamodule, "prompt", None)
    return prompt.describe() if hasattr(prompt, "describe") else None
