"""Score responses against a benchmark's items and aggregate them, as EvalModule does."""

from __future__ import annotations

ANSWER = (
    "### Image Description: a figure.\n### Rationales: r.\n### Let's think step by step.\n### Step 1: s.\n"
    "### The final answer is: "
)


def run(bench, responses: dict[str, str]) -> tuple[list[dict], dict]:
    """Score ``responses`` (qid -> response text) for every item and aggregate, as EvalModule does."""
    items = {i.qid: i for i in bench.items()}
    rows = [{"qid": q, **bench.score(text, items[q]), "meta": items[q].meta} for q, text in responses.items()]
    return rows, bench.aggregate(rows)
