"""Questions about a synthetic scene, with the answer and a worked PeBR rationale and steps.

Each kind in ``demo.world.KINDS`` is one function here, registered in ``QUESTION_KINDS``;
``make_question`` draws a kind from the configured mixture. Steps work only from the teacher
description's facts (colour, shape, size, left-to-right order), so the SFT target teaches
"perceive, then reason". Answers are bare strings: "3", "red", "circle", "yes".

Left out on purpose: drawing scenes (``demo.world``) and records/files (``synthetic``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from pebr_lit.demo.world import (
    COLORS,
    KINDS,
    PLURALS,
    SHAPES,
    Scene,
    WorldConfig,
    join_phrases,
    number_word,
)


class Question(NamedTuple):
    """A question with its answer and the worked reasoning for the SFT target."""

    question: str
    answer: str
    rationale: str
    steps: list[str]
    kind: str


# A kind returns None when it does not apply to the scene (e.g. a tie for the most common colour).
_Body = tuple[str, str, str, list[str]]
KindFn = Callable[[Scene, np.random.Generator, WorldConfig], "_Body | None"]


def _noun(category: str, value: str, n: int) -> str:
    """'blue shape' / 'blue shapes' for colours, 'circle' / 'circles' for shapes."""
    if category == "color":
        return f"{value} shape" if n == 1 else f"{value} shapes"
    return value if n == 1 else PLURALS[value]


def _count(scene: Scene, category: str, value: str) -> tuple[str, str, int]:
    """(listing sentence, count sentence, count) for shapes whose ``category`` equals ``value``."""
    matching = [f"a {o.color} {o.shape}" for o in scene.objects if getattr(o, category) == value]
    n = len(matching)
    if matching:
        listing = f"The {_noun(category, value, 2)} are: {join_phrases(matching)}."
    else:
        listing = f"No shape is {value}." if category == "color" else f"No shape is a {value}."
    return listing, f"That is {n} {_noun(category, value, n)}.", n


def _values(category: str) -> tuple[str, ...]:
    return tuple(COLORS) if category == "color" else SHAPES


def _pick(rng: np.random.Generator, scene: Scene, category: str, cfg: WorldConfig, exclude: str = "") -> str:
    """A colour/shape: with probability present_bias one that is in the scene, else any (0 counts happen)."""
    present = [v for v in _values(category) if v != exclude and any(getattr(o, category) == v for o in scene.objects)]
    pool = present if (rng.random() < cfg.present_bias and present) else [v for v in _values(category) if v != exclude]
    return pool[int(rng.integers(len(pool)))]


def _category(rng: np.random.Generator) -> str:
    return "color" if rng.random() < 0.5 else "shape"


def largest_color(scene: Scene, rng: np.random.Generator, cfg: WorldConfig) -> _Body:
    big = scene.large
    rationale = "The question asks for the color of the largest shape, so I find the large shape in the description."
    return (
        "What color is the largest shape?",
        big.color,
        rationale,
        [
            f"The only large shape is the {big.color} {big.shape}.",
            f"Its color is {big.color}.",
        ],
    )


def largest_shape(scene: Scene, rng: np.random.Generator, cfg: WorldConfig) -> _Body:
    big = scene.large
    rationale = "The question asks for the shape of the largest object, so I find the large shape in the description."
    return (
        "What shape is the largest object?",
        big.shape,
        rationale,
        [
            f"The only large shape is the {big.color} {big.shape}.",
            f"Its shape is a {big.shape}.",
        ],
    )


def count_total(scene: Scene, rng: np.random.Generator, cfg: WorldConfig) -> _Body:
    n = len(scene.objects)
    rationale = "The question asks for the total number of shapes, so I count every shape in the description."
    listing = f"The description lists {number_word(n)} {'shape' if n == 1 else 'shapes'} from left to right."
    tally = f"Counting them one by one gives {', '.join(str(i) for i in range(1, n + 1))}, so the total is {n}."
    return "How many shapes are there in the image?", str(n), rationale, [listing, tally]


def _count_one(scene: Scene, rng: np.random.Generator, cfg: WorldConfig, category: str) -> _Body:
    value = _pick(rng, scene, category, cfg)
    listing, tally, n = _count(scene, category, value)
    plural = _noun(category, value, 2)
    rationale = f"The question asks for the number of {plural}, so I count the {plural} in the description."
    return f"How many {plural} are there?", str(n), rationale, [listing, tally]


def count_color(scene: Scene, rng: np.random.Generator, cfg: WorldConfig) -> _Body:
    return _count_one(scene, rng, cfg, "color")


def count_shape(scene: Scene, rng: np.random.Generator, cfg: WorldConfig) -> _Body:
    return _count_one(scene, rng, cfg, "shape")


def _count_two(
    scene: Scene, rng: np.random.Generator, cfg: WorldConfig, category: str
) -> tuple[str, str, int, int, list[str]]:
    """Two distinct values of ``category`` in random order, their counts and both counting steps."""
    a = _pick(rng, scene, category, cfg)
    b = _pick(rng, scene, category, cfg, exclude=a)
    if rng.random() < 0.5:
        a, b = b, a
    list_a, tally_a, na = _count(scene, category, a)
    list_b, tally_b, nb = _count(scene, category, b)
    return a, b, na, nb, [f"{list_a} {tally_a}", f"{list_b} {tally_b}"]


def compare_colors(scene: Scene, rng: np.random.Generator, cfg: WorldConfig) -> _Body:
    def n(color: str) -> int:
        return sum(o.color == color for o in scene.objects)

    a = _pick(rng, scene, "color", cfg)
    b = _pick(rng, scene, "color", cfg, exclude=a)
    want_yes = rng.random() < 0.5  # balance yes/no; a tie can only be a "no"
    if want_yes and n(a) == n(b):
        others = [c for c in COLORS if n(c) != n(a)]
        b = others[int(rng.integers(len(others)))] if others else b
    if (n(a) > n(b)) != want_yes and n(a) != n(b):
        a, b = b, a
    (list_a, tally_a, na), (list_b, tally_b, nb) = _count(scene, "color", a), _count(scene, "color", b)
    answer = "yes" if na > nb else "no"
    verdict = f"{na} is more than {nb}" if na > nb else f"{na} is not more than {nb}"
    rationale = f"The question asks whether there are more {a} shapes than {b} shapes, so I count both and compare."
    question = f"Are there more {a} shapes than {b} shapes? Answer yes or no."
    return question, answer, rationale, [f"{list_a} {tally_a}", f"{list_b} {tally_b}", f"{verdict}, so {answer}."]


def sum_counts(scene: Scene, rng: np.random.Generator, cfg: WorldConfig) -> _Body:
    category = _category(rng)
    a, b, na, nb, steps = _count_two(scene, rng, cfg, category)
    pa, pb = _noun(category, a, 2), _noun(category, b, 2)
    rationale = f"The question asks for the number of {pa} plus the number of {pb}, so I count both and add."
    return f"How many {pa} and {pb} are there in total?", str(na + nb), rationale, steps + [f"{na} + {nb} = {na + nb}."]


def more_than(scene: Scene, rng: np.random.Generator, cfg: WorldConfig) -> _Body:
    category = _category(rng)
    a, b, na, nb, steps = _count_two(scene, rng, cfg, category)
    if na < nb:  # keep the answer a non-negative count
        a, b, na, nb, steps = b, a, nb, na, steps[::-1]
    pa, pb = _noun(category, a, 2), _noun(category, b, 2)
    rationale = f"The question asks how many more {pa} than {pb} there are, so I count both and subtract."
    return f"How many more {pa} than {pb} are there?", str(na - nb), rationale, steps + [f"{na} - {nb} = {na - nb}."]


def most_common_color(scene: Scene, rng: np.random.Generator, cfg: WorldConfig) -> _Body | None:
    counts = {c: sum(o.color == c for o in scene.objects) for c in COLORS}
    top = max(counts.values())
    winners = [c for c, n in counts.items() if n == top]
    if len(winners) != 1:
        return None
    rationale = (
        "The question asks which color appears most often, so I count the shapes of each color in the description."
    )
    tallies = ", ".join(f"{c} {n}" for c, n in counts.items())
    steps = [f"The counts per color are: {tallies}.", f"The highest count is {top}, for {winners[0]}."]
    return "Which color appears most often?", winners[0], rationale, steps


QUESTION_KINDS: dict[str, KindFn] = {
    "largest_color": largest_color,
    "count_total": count_total,
    "count_color": count_color,
    "largest_shape": largest_shape,
    "compare_colors": compare_colors,
    "most_common_color": most_common_color,
    "sum_counts": sum_counts,
    "count_shape": count_shape,
    "more_than": more_than,
}
assert tuple(QUESTION_KINDS) == KINDS, "synthetic_world.KINDS and QUESTION_KINDS must list the same kinds"


def make_question(
    scene: Scene, rng: np.random.Generator, cfg: WorldConfig | None = None, kind: str | None = None
) -> Question:
    """Draw a question for ``scene`` from ``cfg.kind_weights``.

    ``kind`` forces a kind first; when it (or a drawn kind) does not apply to the scene, the kind
    is drawn again from the mixture without it, so the returned ``Question.kind`` is the one used.
    """
    cfg = cfg or WorldConfig()
    weights = dict(cfg.kind_weights)
    if kind is not None and kind not in QUESTION_KINDS:
        raise ValueError(f"make_question: unknown kind {kind!r}; known kinds: {', '.join(KINDS)}")
    while True:
        if kind is None:
            names = [k for k in KINDS if weights.get(k, 0.0) > 0]
            if not names:
                raise ValueError(
                    f"make_question: no enabled kind in {cfg.kind_weights} applies to this scene; enable more kinds"
                )
            p = np.array([weights[k] for k in names], dtype=np.float64)
            kind = names[int(rng.choice(len(names), p=p / p.sum()))]
        body = QUESTION_KINDS[kind](scene, rng, cfg)
        if body is not None:
            question, answer, rationale, steps = body
            return Question(question, answer, rationale, steps, kind)
        weights[kind] = 0.0
        kind = None
