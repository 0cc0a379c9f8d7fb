"""The demo driver: the whole PeBR-R1 recipe on the tiny model, one plain command per step.

``python -m pebr_lit.demo`` runs, in ``runs/demo`` under the working directory: tiny assets ->
synthetic world -> CLIP training -> warm-up SFT -> difficulty sampling -> tiers -> stage 1 (Easy) ->
stage 2 (Medium) -> held-out evaluation of every stage, plus the two ablation runs the report needs
(stage 2 straight from SFT, and stage 1 without the length penalty), then ``report.md`` with plots.
Every step is an ordinary ``python cli.py ...`` / ``python -m pebr_lit....`` command over a config in
``configs/demo/``; the driver prints each command, writes its output to ``runs/demo/logs/<step>.log``,
and runs independent steps side by side (``--jobs``, one torch thread each: on a 2-core machine two
1-thread processes do more work than one 2-thread process with a model this small), except steps
marked ``alone`` (SFT, the longest), which get every core to themselves.

A finished step leaves ``runs/demo/steps/<step>.json`` (command, seconds, summary line) and is skipped
on the next run; an interrupted stage resumes from its last checkpoint (``--ckpt_path last``). A
failing step stops the demo with a non-zero exit that names the step and its log.

Left out on purpose: what each step does (the CLI, configs and modules), the report's content
(``pebr_lit.demo.report``), and the environment (``make demo`` creates ``.venv`` first).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pebr_lit.demo.steps import DemoSizes, Step, demo_steps, plain_text

RUN = Path("runs/demo")


@dataclass
class _Running:
    step: Step
    process: subprocess.Popen
    log: Path
    started: float = field(default_factory=time.monotonic)


def _marker(step: Step) -> Path:
    return RUN / "steps" / f"{step.name}.json"


def _last_progress(log: Path, width: int = 70) -> str:
    """The latest progress-bar or output line of a running step's log (tqdm rewrites with '\\r')."""
    try:
        with log.open("rb") as f:
            f.seek(max(0, log.stat().st_size - 4096))
            tail = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    pieces = [p.strip() for p in plain_text(tail).split("\n") if p.strip()]
    return pieces[-1][:width] if pieces else ""


def _fail(step: Step, log: Path, code: int, others: list[_Running]) -> int:
    for other in others:
        other.process.terminate()
    for other in others:
        other.process.wait()
    tail = [ln for ln in plain_text(log.read_text(encoding="utf-8", errors="replace")).splitlines() if ln.strip()][-15:]
    print(f"\ndemo: step '{step.name}' failed (exit {code}). Its log: {log}", file=sys.stderr)
    print("---- last lines of the log ----\n" + "\n".join(tail) + "\n----", file=sys.stderr)
    print(
        f"Fix the cause and rerun the same command: finished steps are skipped and '{step.name}' "
        "starts again (a training stage from its last checkpoint).",
        file=sys.stderr,
    )
    return 1


def run_steps(steps: list[Step], jobs: int, cores: int, echo: Callable[[str], None] = print) -> int:
    """Run ``steps`` (each after its ``needs``), at most ``jobs`` at once; 0 on success, 1 on a failure."""
    from tqdm import tqdm

    names = {s.name for s in steps}
    for step in steps:
        missing = [n for n in step.needs if n not in names]
        if missing:
            raise ValueError(f"demo step {step.name!r} needs unknown step(s) {missing}")
    done = {s.name for s in steps if _marker(s).exists()}
    for step in steps:
        if step.name in done:
            info = json.loads(_marker(step).read_text())
            echo(f"[done earlier] {step.name}: {info.get('summary', '')}")
    (RUN / "logs").mkdir(parents=True, exist_ok=True)
    (RUN / "steps").mkdir(parents=True, exist_ok=True)
    threads = max(1, cores // max(1, jobs))
    pending = [s for s in steps if s.name not in done]
    running: list[_Running] = []
    # Off a terminal (CI, a log file) only the step lines are printed, not a bar redrawn twice a second.
    bar = tqdm(
        total=len(steps),
        initial=len(done),
        desc="demo",
        unit="step",
        dynamic_ncols=True,
        file=sys.stdout,
        disable=not sys.stdout.isatty(),
        bar_format="{desc}: {n_fmt}/{total_fmt} steps done [{elapsed}] {postfix}",
    )  # steps differ too much for an ETA
    try:
        while pending or running:
            for step in [s for s in pending if all(n in done for n in s.needs)]:
                want = cores if step.alone else threads
                if running and (step.alone or any(r.step.alone for r in running) or len(running) >= jobs):
                    break
                pending.remove(step)
                log = RUN / "logs" / f"{step.name}.log"
                # TTY_*: Lightning's rich progress bar draws into the log as on a terminal, so the
                # driver can show each running step's latest progress line.
                env = {
                    **os.environ,
                    "OMP_NUM_THREADS": str(want),
                    "PYTHONUNBUFFERED": "1",
                    "HF_HUB_OFFLINE": "1",
                    "TOKENIZERS_PARALLELISM": "false",
                    "TTY_COMPATIBLE": "1",
                    "TTY_INTERACTIVE": "1",
                    "COLUMNS": "120",
                }
                bar.write(f"[start] {step.name}: {' '.join(step.argv)}  (log: {log})")
                with log.open("ab") as out:
                    out.write(f"$ {' '.join(step.argv)}\n".encode())
                    process = subprocess.Popen(step.argv, stdout=out, stderr=subprocess.STDOUT, env=env)
                running.append(_Running(step, process, log))
            if pending and not running:
                raise RuntimeError(f"demo steps cannot start, their needs never finish: {[s.name for s in pending]}")
            time.sleep(0.5)
            for item in list(running):
                code = item.process.poll()
                if code is None:
                    continue
                running.remove(item)
                if code != 0:
                    bar.close()
                    return _fail(item.step, item.log, code, running)
                seconds = time.monotonic() - item.started
                summary = item.step.summarize(item.log)
                _marker(item.step).write_text(
                    json.dumps({"command": item.step.argv, "seconds": round(seconds, 1), "summary": summary}, indent=2)
                    + "\n"
                )
                done.add(item.step.name)
                bar.update(1)
                bar.write(f"[{_minutes(seconds)}] {item.step.name}: {summary}")
            bar.set_postfix_str(" | ".join(f"{r.step.name}: {_last_progress(r.log)}" for r in running), refresh=True)
    except KeyboardInterrupt:
        for item in running:
            item.process.terminate()
        bar.close()
        print("\ndemo: interrupted; rerun the same command to continue from the last finished step.", file=sys.stderr)
        return 130
    bar.close()
    return 0


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def main(argv: list[str] | None = None) -> int:
    """CLI: run the demo (or the steps up to ``--until``) and print the report's headline table."""
    parser = argparse.ArgumentParser(prog="python -m pebr_lit.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="steps run side by side (default 2)")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="CPU cores shared by the jobs")
    parser.add_argument("--quick", action="store_true", help="a minutes-long smoke version (tiny sizes, few steps)")
    parser.add_argument("--until", default=None, help="stop after this step (and what it needs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--list", action="store_true", help="print the steps and their commands, run nothing")
    args = parser.parse_args(argv)
    sizes = DemoSizes.quick() if args.quick else DemoSizes()
    steps = demo_steps(sizes, python=sys.executable, root=Path(__file__).resolve().parents[2], seed=args.seed)
    if args.until:
        steps = _upto(steps, args.until)
    if args.list:
        for step in steps:
            print(f"{step.name} (after {', '.join(step.needs) or '-'}): {' '.join(step.argv)}")
        return 0
    _check_same_demo({**asdict(sizes), "seed": args.seed})
    started = time.monotonic()
    code = run_steps(steps, jobs=args.jobs, cores=args.cores)
    if code == 0:
        print(f"demo: finished in {_minutes(time.monotonic() - started)} (this run); report: {RUN / 'report.md'}")
    return code


def _check_same_demo(settings: dict) -> None:
    """Refuse to continue a run directory made with other sizes or seed (its finished steps would be reused)."""
    path = RUN / "steps" / "settings.json"
    if path.is_file():
        before = json.loads(path.read_text())
        if before != settings:
            changed = sorted(k for k in settings if before.get(k) != settings[k])
            raise SystemExit(
                f"error: {RUN} holds a demo run with other settings ({', '.join(changed)}; see {path}). "
                f"Delete {RUN} (make clean) to start over, or rerun with the same options to continue it."
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=2) + "\n")


def _upto(steps: list[Step], last: str) -> list[Step]:
    by_name = {s.name: s for s in steps}
    if last not in by_name:
        raise SystemExit(f"error: --until {last!r} is not a demo step; steps: {', '.join(by_name)}")
    keep: set[str] = set()
    todo = [last]
    while todo:
        name = todo.pop()
        if name not in keep:
            keep.add(name)
            todo.extend(by_name[name].needs)
    return [s for s in steps if s.name in keep]


if __name__ == "__main__":
    sys.exit(main())
