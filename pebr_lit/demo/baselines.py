"""Blind baselines: how well a model that reads the question but never looks at the image can do.

The majority answer per question text in a training split (falling back to the majority per
``meta["kind"]``, then overall) is scored on a held-out split. A trained policy's accuracy means
something only above this line; the demo prints both.

Left out on purpose: any model (this is counting answers in files).
"""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict
from collections.abc import Sequence

from pebr_lit.data.records import Record, load_records
from pebr_lit.rewards.grading import grade


def blind_baseline(train: Sequence[Record], test: Sequence[Record]) -> float:
    """Accuracy on ``test`` of the majority answer per question text learned from ``train``."""
    if not train or not test:
        raise ValueError("blind_baseline needs non-empty train and test records.")
    by_text: dict[str, Counter] = defaultdict(Counter)
    by_kind: dict[str, Counter] = defaultdict(Counter)
    overall: Counter = Counter()
    for r in train:
        by_text[r.problem][r.answer] += 1
        by_kind[str(r.meta.get("kind", ""))][r.answer] += 1
        overall[r.answer] += 1
    correct = 0
    for r in test:
        counts = by_text.get(r.problem) or by_kind.get(str(r.meta.get("kind", ""))) or overall
        correct += grade(counts.most_common(1)[0][0], r.answer)
    return correct / len(test)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", required=True, help="record file the majority answers are counted on")
    parser.add_argument("--test", required=True, help="record file they are scored on")
    args = parser.parse_args(argv)
    accuracy = blind_baseline(load_records(args.train), load_records(args.test))
    print(f"blind baseline (majority answer per question, image ignored): accuracy {accuracy:.3f} on {args.test}")


if __name__ == "__main__":
    main()
