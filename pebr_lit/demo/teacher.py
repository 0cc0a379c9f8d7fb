"""The SFT teacher's imperfections: terse descriptions and careless final answers, at set rates.

Real warm-up data is distilled from a teacher model and is imperfect in two ways that PeBR-R1's two RL
stages address: descriptions that leave out what is in the image (stage 1's keyword and CLIP rewards
score the description) and reasoning that ends in a wrong answer (stage 2's accuracy reward). A
world whose SFT targets were flawless would give RL nothing to fix that imitation had not already
learned, so the demo's SFT split can carry both flaws:

- ``terse``: the description gives only the number of shapes ("There are four shapes."), leaving out
  every shape's colour, size and shape; the steps still work from the full scene.
- ``slip``: careless arithmetic: the final answer of a counting question (a number) is off by one,
  while the steps before it stay correct. Questions whose answer is a colour, a shape or yes/no are
  never slipped, so the warm-up model still answers those reliably and the Easy tier (all 8 sampled
  answers right) is not emptied by the noise.

Only the ``response`` text changes; ``answer``, ``description`` and ``key_words`` stay the truth, so
the RL stages, CLIP training and evaluation grade against correct targets. Each flaw is drawn from its
own stream, ``default_rng([seed, split_id, index, 1])``, so the scene and question of a record are the
same with or without teacher noise.

Left out on purpose: scenes, questions and files (``demo.world``, ``demo.questions``, ``synthetic``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pebr_lit.demo.world import number_word


@dataclass(frozen=True)
class TeacherNoise:
    """Rates of the teacher's flaws in SFT targets; 0 and 0 = a flawless teacher."""

    terse: float = 0.0
    """Probability that a response's description gives only the number of shapes."""
    slip: float = 0.0
    """Probability that a counting question's final answer is off by one."""

    def __post_init__(self) -> None:
        for name in ("terse", "slip"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"TeacherNoise: {name} must be in [0, 1], got {value}")

    @property
    def active(self) -> bool:
        return self.terse > 0 or self.slip > 0


def terse_description(num_shapes: int) -> str:
    """The count-only description: 'There are four shapes.' / 'There is one shape.'."""
    return "There is one shape." if num_shapes == 1 else f"There are {number_word(num_shapes)} shapes."


def can_slip(answer: str) -> bool:
    """Only counts slip (careless arithmetic)."""
    return answer.isdigit()


def slipped_answer(answer: str) -> str:
    """The careless count: ``answer`` + 1."""
    if not can_slip(answer):
        raise ValueError(f"slipped_answer: {answer!r} is not a count; only counting answers slip")
    return str(int(answer) + 1)


def draw_flaws(rng: np.random.Generator, noise: TeacherNoise) -> tuple[bool, bool]:
    """(terse, slip) for one response; always two draws, so one rate does not shift the other's stream."""
    u = rng.random(2)
    return bool(u[0] < noise.terse), bool(u[1] < noise.slip)
