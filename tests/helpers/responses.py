"""Rendered responses and fuzzing strategies shared by the reward tests."""

from __future__ import annotations

import math

from hypothesis import strategies as st

from pebr_lit.format.response import render_response

SCENE = "A red square and two blue circles"


def full(description: str = SCENE, answer: str = "3", rationale: str = "Count the shapes.") -> str:
    return render_response(description, rationale, ["Look at each shape.", "There are 3."], answer)


HEADINGS = [
    "### Image Description:",
    "### Rationales:",
    "### Let's think step by step.",
    "### Step 1:",
    "### Step 2:",
    "### The final answer is:",
    "###",
    "\n",
    " ",
]
#: Any code point: lone surrogates (which a record read with ``surrogateescape`` can hold; ``st.text`` never
#: draws them), controls, NUL.
any_text = st.lists(st.one_of(st.characters(), st.characters(categories=["Cs", "Cc"])), max_size=60).map("".join)
texts = st.one_of(
    st.text(max_size=300),
    any_text,
    st.lists(st.one_of(st.sampled_from(HEADINGS), st.text(max_size=40), any_text), max_size=12).map("".join),
)
keyword_lists = st.one_of(st.lists(st.text(max_size=12), max_size=6), st.text(max_size=12))


def in_unit(x: float) -> bool:
    return math.isfinite(x) and 0.0 <= x <= 1.0
