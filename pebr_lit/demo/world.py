"""The synthetic shapes world: its config, random scenes, their pictures and teacher descriptions.

A scene is 1-6 non-overlapping coloured shapes (circle/square/triangle in red, green, blue or
yellow) on a light background; exactly one of them is large. ``describe`` is the "teacher" image
description, listing the shapes left to right; ``keywords`` are its count, colour and shape words,
which stage-1 perception RL rewards.

Left out on purpose: questions and answers (``demo.questions``) and writing files
(``synthetic``). Only numpy and PIL are used; no model is involved.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (214, 39, 40),
    "green": (44, 160, 44),
    "blue": (31, 100, 200),
    "yellow": (235, 190, 0),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
PLURALS: dict[str, str] = {"circle": "circles", "square": "squares", "triangle": "triangles"}
NUMBER_WORDS: tuple[str, ...] = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
)

# Question kinds, easiest for the tiny model first (docs/demo.md, "The tiny model"); implemented in demo.questions.
KINDS: tuple[str, ...] = (
    "largest_color",
    "count_total",
    "count_color",
    "largest_shape",
    "compare_colors",
    "most_common_color",
    "sum_counts",
    "count_shape",
    "more_than",
)
DEFAULT_KIND_WEIGHTS: tuple[tuple[str, float], ...] = (
    ("largest_color", 0.15),  # easy: one big patch of colour
    ("count_total", 0.15),  # easy: counting blobs
    ("count_color", 0.15),  # easy-medium
    ("largest_shape", 0.10),  # medium: identity of the big shape only
    ("compare_colors", 0.10),  # medium: two counts, yes/no
    ("most_common_color", 0.05),  # medium: four counts
    ("sum_counts", 0.10),  # medium-hard: two counts plus addition
    ("count_shape", 0.10),  # hard: identity of small shapes
    ("more_than", 0.10),  # hard: two counts plus subtraction
)

# Shape geometry relative to the nominal radius r. The square's half-side and the triangle's
# circumradius are scaled up so the three shapes look about equally big; EXTENT is the farthest
# point from the centre, used for overlap and border checks.
_SQUARE_HALF = 0.85
_TRIANGLE_CIRCUM = 1.25
_EXTENT = {"circle": 1.0, "square": _SQUARE_HALF * math.sqrt(2.0), "triangle": _TRIANGLE_CIRCUM}


@dataclass(frozen=True)
class WorldConfig:
    """Everything that shapes the synthetic world; defaults are the embedded demo's."""

    image_size: int = 112
    """Width and height of each image in pixels."""
    min_objects: int = 1
    """Fewest shapes in a scene."""
    max_objects: int = 6
    """Most shapes in a scene (at most 12)."""
    small_radius: int = 11
    """Nominal radius of the small shapes in pixels (at 8 px, about one patch, the tiny model confused them)."""
    large_radius: int = 18
    """Nominal radius of the one large shape in pixels."""
    gap: int = 4
    """Least empty space between two shapes in pixels."""
    min_dx: int = 4
    """Least horizontal distance between two centres in pixels, so 'left to right' is unambiguous."""
    margin: int = 2
    """Least space between a shape and the image border in pixels."""
    background: tuple[int, int, int] = (245, 245, 240)
    """Background RGB colour."""
    present_bias: float = 0.75
    """Probability that a colour/shape asked about is drawn from those present rather than all."""
    kind_weights: tuple[tuple[str, float], ...] = DEFAULT_KIND_WEIGHTS
    """(kind, weight) pairs: the question mixture; weights need not sum to 1, 0 disables a kind."""

    def __post_init__(self) -> None:
        if not 1 <= self.min_objects <= self.max_objects <= 12:
            raise ValueError(
                f"WorldConfig: need 1 <= min_objects <= max_objects <= 12, got {self.min_objects}, {self.max_objects}"
            )
        if not 0 < self.small_radius <= self.large_radius:
            raise ValueError(
                f"WorldConfig: need 0 < small_radius <= large_radius, got {self.small_radius}, {self.large_radius}"
            )
        if 2 * (_TRIANGLE_CIRCUM * self.large_radius + self.margin) >= self.image_size:
            raise ValueError(
                f"WorldConfig: a large shape of radius {self.large_radius} does not fit a {self.image_size} px image; "
                "enlarge image_size or lower large_radius"
            )
        if not 0.0 <= self.present_bias <= 1.0:
            raise ValueError(f"WorldConfig: present_bias must be in [0, 1], got {self.present_bias}")
        names = [name for name, _ in self.kind_weights]
        unknown = sorted(set(names) - set(KINDS))
        if unknown or len(set(names)) != len(names):
            raise ValueError(
                f"WorldConfig: kind_weights has unknown or repeated kinds {unknown or names}; known: {', '.join(KINDS)}"
            )
        weights = [w for _, w in self.kind_weights]
        if any(w < 0 or not math.isfinite(w) for w in weights) or sum(weights) <= 0:
            raise ValueError(f"WorldConfig: kind_weights must be finite, >= 0 and not all 0, got {self.kind_weights}")


@dataclass(frozen=True)
class SceneObject:
    """One shape in a scene; coordinates in pixels, origin top-left."""

    shape: str
    """One of SHAPES."""
    color: str
    """One of COLORS."""
    size: str
    """'large' or 'small'."""
    x: int
    """Centre column."""
    y: int
    """Centre row."""
    radius: int
    """Nominal radius (see _EXTENT for the farthest point of each shape)."""

    @property
    def phrase(self) -> str:
        """'a large red circle'."""
        return f"a {self.size} {self.color} {self.shape}"

    @property
    def extent(self) -> float:
        """Distance from the centre to the shape's farthest point, in pixels."""
        return _EXTENT[self.shape] * self.radius

    def to_dict(self) -> dict:
        """Plain JSON form, stored in a record's meta["objects"]."""
        return {
            "shape": self.shape,
            "color": self.color,
            "size": self.size,
            "x": self.x,
            "y": self.y,
            "radius": self.radius,
        }


@dataclass(frozen=True)
class Scene:
    """Shapes sorted left to right (by centre column)."""

    objects: tuple[SceneObject, ...]
    image_size: int

    @property
    def large(self) -> SceneObject:
        """The one large shape."""
        return next(o for o in self.objects if o.size == "large")


def _fits(candidate: SceneObject, placed: list[SceneObject], cfg: WorldConfig) -> bool:
    lo = candidate.extent + cfg.margin
    if not (lo <= candidate.x <= cfg.image_size - 1 - lo and lo <= candidate.y <= cfg.image_size - 1 - lo):
        return False
    for other in placed:
        if abs(other.x - candidate.x) < cfg.min_dx:
            return False
        if math.hypot(other.x - candidate.x, other.y - candidate.y) < candidate.extent + other.extent + cfg.gap:
            return False
    return True


def make_scene(rng: np.random.Generator, cfg: WorldConfig | None = None) -> Scene:
    """Draw a random scene by rejection sampling; deterministic given the generator's state."""
    cfg = cfg or WorldConfig()
    n = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
    for _ in range(100):  # restarts when a crowded scene paints itself into a corner
        placed: list[SceneObject] = []
        for i in range(n):
            size, radius = ("large", cfg.large_radius) if i == 0 else ("small", cfg.small_radius)
            shape = SHAPES[int(rng.integers(len(SHAPES)))]
            color = list(COLORS)[int(rng.integers(len(COLORS)))]
            for _ in range(200):
                x, y = (int(v) for v in rng.integers(0, cfg.image_size, size=2))
                candidate = SceneObject(shape, color, size, x, y, radius)
                if _fits(candidate, placed, cfg):
                    placed.append(candidate)
                    break
            else:
                break
        if len(placed) == n:
            return Scene(tuple(sorted(placed, key=lambda o: o.x)), cfg.image_size)
    raise ValueError(
        f"make_scene: could not place {n} shapes (radii {cfg.small_radius}/{cfg.large_radius} px, gap {cfg.gap}) "
        f"in a {cfg.image_size} px image; lower max_objects, the radii or the gap, or enlarge image_size"
    )


def render(scene: Scene, cfg: WorldConfig | None = None) -> Image.Image:
    """Draw the scene as an RGB image (flat fill with a darker 1 px outline, no anti-aliasing)."""
    cfg = cfg or WorldConfig()
    image = Image.new("RGB", (scene.image_size, scene.image_size), cfg.background)
    draw = ImageDraw.Draw(image)
    for o in scene.objects:
        fill = COLORS[o.color]
        outline = tuple(int(c * 0.6) for c in fill)
        if o.shape == "circle":
            r = o.radius
            draw.ellipse((o.x - r, o.y - r, o.x + r, o.y + r), fill=fill, outline=outline)
        elif o.shape == "square":
            h = round(_SQUARE_HALF * o.radius)
            draw.rectangle((o.x - h, o.y - h, o.x + h, o.y + h), fill=fill, outline=outline)
        else:  # equilateral, pointing up, centred on its circumcentre
            big_r = _TRIANGLE_CIRCUM * o.radius
            half_w = big_r * math.sqrt(3.0) / 2.0
            points = [(o.x, o.y - big_r), (o.x + half_w, o.y + big_r / 2.0), (o.x - half_w, o.y + big_r / 2.0)]
            draw.polygon([(round(px), round(py)) for px, py in points], fill=fill, outline=outline)
    return image


def number_word(n: int) -> str:
    """'three' for 3 (digits beyond twelve)."""
    return NUMBER_WORDS[n] if 0 <= n < len(NUMBER_WORDS) else str(n)


def join_phrases(phrases: list[str]) -> str:
    """'a, b and c'."""
    return phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]


def describe(scene: Scene) -> str:
    """The teacher description: the number of shapes, then each shape left to right."""
    phrases = [o.phrase for o in scene.objects]
    if len(phrases) == 1:
        return f"There is one shape: {phrases[0]}."
    return f"There are {number_word(len(phrases))} shapes. From left to right: {join_phrases(phrases)}."


def keywords(scene: Scene) -> list[str]:
    """The count word, then colour and shape words in order of first mention in ``describe``, no repeats."""
    words = [number_word(len(scene.objects))]
    for o in scene.objects:
        for word in (o.color, o.shape):
            if word not in words:
                words.append(word)
    return words
