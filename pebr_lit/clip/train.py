"""CLIP training: fit a small open_clip model contrastively on record files' image-description pairs.

Makes the demo's CLIP reward measure something: the tiny CLIP from ``demo.tiny_clip`` starts random, so its
similarities are noise. This trains it with the symmetric InfoNCE loss (image->text and text->image
cross-entropy over a batch, scaled by the model's learnable ``logit_scale``), reports held-out
retrieval before and after, and saves it back in open_clip's local-dir layout (``open_clip_config.json``
+ ``open_clip_model.safetensors``) so ``load_clip`` and ``ClipScorer`` read it like any checkpoint.

Held-out figures, per block of ``eval_candidates`` pairs: top-1 image->text and text->image accuracy
among all candidates (chance = 1 / candidates), the same among "hard" candidates only (texts whose first
sentence matches, i.e. the same object count in the synthetic world), and the mean cosine of matching
and non-matching pairs with the stage-1 CLIP reward (``rewards.clip_reward_from_similarity``) they get.

Left out on purpose: building the model (``demo.tiny_clip``), loading (``clip.loading``), scoring during RL
(``clip.scorers``), data augmentation, learning-rate schedules beyond a short warm-up, and multi-image
records (the first image is used).

    python -m pebr_lit.clip.train --clip DIR --records train.jsonl --val-records val.jsonl --out DIR --steps N
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from pebr_lit.clip.loading import load_clip
from pebr_lit.data.records import load_records
from pebr_lit.data.sources import RecordError
from pebr_lit.rewards.components import clip_reward_from_similarity

MANIFEST = "train_clip.json"
WEIGHTS = "open_clip_model.safetensors"
CONFIG = "open_clip_config.json"
TRAIN_CLIP_FORMAT = 1  # bump when the same arguments would train a different model


def load_pairs(
    path: str | Path, preprocess: Any, tokenizer: Any, limit: int | None = None, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Pixels ``[N, 3, H, W]`` (``dtype``), tokens ``[N, T]`` and the descriptions of a file's first ``limit`` rows.

    Raises ``RecordError`` naming the row when a record has no ``description``.
    """
    records = load_records(path, limit=limit)
    texts = []
    for record in records:
        if not record.description:
            raise RecordError(
                record.source or f"qid {record.qid!r}",
                "has no description",
                "CLIP trains on image-description pairs; add the teacher description or drop the row",
                "description",
            )
        texts.append(record.description)
    first = _pixels(records[0].load_images()[0], preprocess) if records else torch.zeros(3, 1, 1)  # [3, H, W]
    # Filled in place: 25,600 demo pairs are 3.9 GB in float32 and a torch.stack would hold them twice.
    pixels = torch.empty((len(records), *first.shape), dtype=dtype)  # [N, 3, H, W]
    for i, r in enumerate(records):
        pixels[i] = first if i == 0 else _pixels(r.load_images()[0], preprocess)
    return pixels, tokenizer(texts), texts  # tokens [N, T]


def _pixels(image: Any, preprocess: Any) -> torch.Tensor:
    """``preprocess(image)`` ``[3, H, W]``, with a fast path when the image already has the model's size.

    open_clip's PIL resize + crop costs ~10 ms per image even when it changes nothing, which made loading
    the demo's pairs slower than training on them; at the input size only the normalisation remains.
    """
    steps = getattr(preprocess, "transforms", [])
    size = next((getattr(t, "size", None) for t in steps if type(t).__name__ == "CenterCrop"), None)
    norm = next((t for t in steps if type(t).__name__ == "Normalize"), None)
    side = size[0] if isinstance(size, (list, tuple)) else size
    if norm is None or side is None or image.size != (side, side):
        return preprocess(image)
    x = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)  # [3, H, W]
    mean = torch.tensor(norm.mean, dtype=torch.float32)[:, None, None]  # [3, 1, 1]
    std = torch.tensor(norm.std, dtype=torch.float32)[:, None, None]  # [3, 1, 1]
    return (x - mean) / std


def contrastive_loss(image: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE of unit embeddings ``[B, D]``: mean of image->text and text->image cross-entropy."""
    logits = logit_scale.exp() * image @ text.T  # [B, B]; row i's target is column i
    target = torch.arange(len(image))  # [B]
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def _encode(model: Any, pixels: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    image = F.normalize(model.encode_image(pixels), dim=-1)  # [B, D]
    text = F.normalize(model.encode_text(tokens), dim=-1)  # [B, D]
    return image, text


@torch.no_grad()
def evaluate(
    model: Any,
    pixels: torch.Tensor,
    tokens: torch.Tensor,
    texts: list[str],
    candidates: int = 64,
    threshold: float = 0.4,
) -> dict[str, float]:
    """Held-out retrieval and similarity figures over full blocks of ``candidates`` pairs (see module docstring)."""
    if len(texts) < candidates:
        raise ValueError(
            f"evaluate: {len(texts)} held-out pairs, fewer than candidates={candidates}; "
            "give more validation records or lower --eval-candidates."
        )
    was_training = model.training
    model.eval()
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}

    def add(name: str, values: torch.Tensor) -> None:
        sums[name] = sums.get(name, 0.0) + float(values.float().sum())
        counts[name] = counts.get(name, 0) + values.numel()

    for start in range(0, len(texts) - candidates + 1, candidates):
        block = slice(start, start + candidates)
        image, text = _encode(model, pixels[block], tokens[block])
        sim = image @ text.T  # [C, C] cosine similarities
        target = torch.arange(candidates)  # [C]
        add("loss", contrastive_loss(image, text, model.logit_scale).reshape(1) * candidates)
        add("i2t", sim.argmax(dim=1) == target)
        add("t2i", sim.argmax(dim=0) == target)
        # Hard candidates: texts whose first sentence ("There are three shapes.") matches the true one.
        heads = [t.split(".")[0] for t in texts[block]]
        same = torch.tensor([[a == b for b in heads] for a in heads])  # [C, C], symmetric, diagonal True
        hard = sim.masked_fill(~same, float("-inf"))  # [C, C]
        add("i2t_hard", hard.argmax(dim=1) == target)
        add("t2i_hard", hard.argmax(dim=0) == target)
        add("hard_chance", 1.0 / same.sum(dim=1))
        eye = torch.eye(candidates, dtype=torch.bool)  # [C, C]
        add("cos_match", sim[eye])
        add("cos_other", sim[~eye])
        add("cos_other_hard", sim[same & ~eye])
        add("match_above", sim[eye] >= threshold)
        add("reward_match", torch.tensor([clip_reward_from_similarity(s, threshold) for s in sim[eye].tolist()]))
        add("reward_other", torch.tensor([clip_reward_from_similarity(s, threshold) for s in sim[~eye].tolist()]))
    model.train(was_training)
    out = {name: sums[name] / counts[name] for name in sums}
    out["loss"] = sums["loss"] / counts["i2t"]
    out["chance"] = 1.0 / candidates
    return out


def summary(m: dict[str, float], threshold: float = 0.4) -> str:
    """One line of held-out figures."""
    return (
        f"i2t {m['i2t']:.3f} t2i {m['t2i']:.3f} (chance {m['chance']:.3f}); same-count i2t {m['i2t_hard']:.3f} "
        f"t2i {m['t2i_hard']:.3f} (chance {m['hard_chance']:.3f}); cos match {m['cos_match']:.3f} "
        f"other {m['cos_other']:.3f} same-count {m['cos_other_hard']:.3f}; "
        f"match >= {threshold}: {m['match_above']:.2f}; "
        f"reward match {m['reward_match']:.2f} other {m['reward_other']:.2f}; loss {m['loss']:.3f}"
    )


def train_clip(
    clip: str | Path,
    records: str | Path,
    val_records: str | Path,
    out: str | Path,
    steps: int = 400,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 0.1,
    warmup: int = 20,
    max_train: int | None = None,
    val_limit: int = 512,
    eval_candidates: int = 64,
    seed: int = 0,
    threads: int | None = None,
    force: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Train the CLIP in ``clip`` on image-description pairs and save it to ``out``; returns the manifest.

    Skips the work when ``out/train_clip.json`` records the same arguments and the weights exist.

    Args:
        clip: open_clip local directory to start from (e.g. ``build_tiny_clip``'s output).
        records: training record file (any ``load_records`` source); every row needs a ``description``.
        val_records: held-out record file for the before/after figures.
        out: directory to write the trained model and ``train_clip.json`` to (replaced).
        steps: optimiser steps.
        batch_size: pairs per step (the in-batch negatives).
        lr: AdamW peak learning rate (constant after a linear warm-up).
        weight_decay: AdamW weight decay on matrices (not on gains, biases, embeddings' scale).
        warmup: steps of linear warm-up.
        max_train: training pairs loaded (default ``steps * batch_size``, i.e. each seen about once).
        val_limit: held-out pairs read from ``val_records``.
        eval_candidates: pairs per retrieval block (chance = 1 / eval_candidates).
        seed: seed for the shuffling.
        threads: torch intra-op threads (default: leave torch's setting).
        force: retrain even if the manifest matches.
        progress: show a progress bar on stderr.
    """
    if steps < 0 or batch_size < 2 or warmup < 0:
        raise ValueError(
            f"train_clip: steps={steps}, batch_size={batch_size}, warmup={warmup}: need steps >= 0, "
            "batch_size >= 2 (the negatives) and warmup >= 0."
        )
    clip_dir, out_dir = Path(clip).resolve(), Path(out).resolve()
    if clip_dir == out_dir:
        raise ValueError(f"train_clip: out={out} is the input directory; write the trained model elsewhere.")
    key = {
        "format": TRAIN_CLIP_FORMAT,
        "clip": str(clip_dir),
        "records": str(Path(records).resolve()),
        "val_records": str(Path(val_records).resolve()),
        "steps": steps,
        "batch_size": batch_size,
        "lr": lr,
        "weight_decay": weight_decay,
        "warmup": warmup,
        "max_train": max_train,
        "val_limit": val_limit,
        "eval_candidates": eval_candidates,
        "seed": seed,
    }
    manifest_path = out_dir / MANIFEST
    if not force and manifest_path.is_file() and (out_dir / WEIGHTS).is_file():
        try:
            manifest = json.loads(manifest_path.read_text())
            if manifest.get("args") == key:
                return {**manifest, "cached": True}
        except json.JSONDecodeError:
            pass  # a damaged manifest means a retrain
    if threads:
        torch.set_num_threads(threads)
    started = time.perf_counter()
    model, preprocess, tokenizer = load_clip(clip_dir, setting="--clip")
    val = load_pairs(val_records, preprocess, tokenizer, limit=val_limit)
    # float16 storage halves memory (pixels are normalised values in about [-2, 2]); batches go back to float32.
    train = load_pairs(records, preprocess, tokenizer, limit=max_train or steps * batch_size, dtype=torch.float16)
    if len(train[2]) < batch_size:
        raise ValueError(f"train_clip: {records} gave {len(train[2])} pairs, fewer than batch_size={batch_size}.")
    load_seconds = time.perf_counter() - started
    before = evaluate(model, *val, candidates=eval_candidates)

    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=lr
    )
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(train[2]), generator=generator)  # [N]
    cursor, losses = 0, []
    model.train()
    bar = range(steps)
    if progress:
        from rich.console import Console
        from rich.progress import track

        bar = track(bar, description="train clip", total=steps, console=Console(stderr=True))
    for step in bar:
        if cursor + batch_size > len(order):  # a new epoch over the loaded pairs
            order, cursor = torch.randperm(len(train[2]), generator=generator), 0
        idx = order[cursor : cursor + batch_size]  # [B]
        cursor += batch_size
        for group in optimizer.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / max(1, warmup))
        image, text = _encode(model, train[0][idx].float(), train[1][idx])
        loss = contrastive_loss(image, text, model.logit_scale)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():  # CLIP's cap: a temperature below 1/100 makes training unstable
            model.logit_scale.clamp_(0, 4.6052)
        losses.append(float(loss.detach()))
    train_seconds = time.perf_counter() - started - load_seconds
    after = evaluate(model, *val, candidates=eval_candidates)

    from safetensors.torch import save_file

    shutil.rmtree(out_dir, ignore_errors=True)  # the manifest is written last, so a half-written dir is never "done"
    out_dir.mkdir(parents=True)
    shutil.copyfile(clip_dir / CONFIG, out_dir / CONFIG)
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(out_dir / WEIGHTS))
    manifest = {
        "args": key,
        "train_pairs": len(train[2]),
        "val_pairs": len(val[2]),
        "first_loss": losses[0] if losses else None,
        "last_loss": sum(losses[-10:]) / len(losses[-10:]) if losses else None,
        "logit_scale": float(model.logit_scale.detach().exp()),
        "before": before,
        "after": after,
        "threads": torch.get_num_threads(),
        "load_seconds": round(load_seconds, 2),
        "train_seconds": round(train_seconds, 2),
    }
    manifest_path.write_text(json.dumps(manifest, indent=2))
    return {**manifest, "cached": False}


def main(argv: list[str] | None = None) -> int:
    """CLI: train, then print one summary line (before -> after held-out retrieval)."""
    parser = argparse.ArgumentParser(prog="python -m pebr_lit.clip.train", description=__doc__.splitlines()[0])
    parser.add_argument("--clip", required=True, help="open_clip local directory to start from")
    parser.add_argument("--records", required=True, help="training records (need `description`)")
    parser.add_argument("--val-records", required=True, help="held-out records for the figures")
    parser.add_argument("--out", required=True, help="output directory (open_clip local-dir layout)")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=0.1)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--max-train", type=int, default=None, help="training pairs loaded (default steps x batch)")
    parser.add_argument("--val-limit", type=int, default=512)
    parser.add_argument("--eval-candidates", type=int, default=64, help="pairs per retrieval block")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--force", action="store_true", help="retrain even if the manifest matches")
    parser.add_argument("--no-progress", action="store_true")
    a = parser.parse_args(argv)
    m = train_clip(
        a.clip,
        a.records,
        a.val_records,
        a.out,
        steps=a.steps,
        batch_size=a.batch_size,
        lr=a.lr,
        weight_decay=a.weight_decay,
        warmup=a.warmup,
        max_train=a.max_train,
        val_limit=a.val_limit,
        eval_candidates=a.eval_candidates,
        seed=a.seed,
        threads=a.threads,
        force=a.force,
        progress=not a.no_progress,
    )
    if m["cached"]:
        print(f"clip in {a.out}: cached ({m['args']['steps']} steps); held-out {summary(m['after'])}")
        return 0
    print(f"clip in {a.out}: before {summary(m['before'])}")
    print(
        f"clip in {a.out}: {a.steps} steps x {a.batch_size} in {m['train_seconds']:.1f} s "
        f"({m['threads']} threads, loading {m['load_seconds']:.1f} s), logit scale {m['logit_scale']:.1f}; "
        f"after {summary(m['after'])}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
