"""Cut-off responses per benchmark: how many hit ``max_new_tokens``, how many of those still scored, how many lack
a final-answer section.

Evaluation rows record ``truncated`` (the rollout stopped at ``max_new_tokens``, ``modules.evaluation``) and the
``response``; a response without the final-answer heading is graded on its whole text
(``format.response.extract_answer``), where option text or a stray letter could earn credit, so these counts sit
beside each benchmark's accuracy in its metrics.

Left out on purpose: deciding what a cut-off response is worth (the scoring rules: ``eval.vlmevalkit_rules``,
``eval.answers``) and writing the numbers (``eval.results``).
"""

from __future__ import annotations

from typing import Any

from pebr_lit.format.response import parse_response


def response_counts(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """How many scored rows were cut off and how many lack a final-answer section, per benchmark.

    ``truncated`` (a rate, as before) and ``truncated_n``: responses stopped by ``max_new_tokens``
    (``row["truncated"]``); ``truncated_correct``: those still graded correct (their credit came from text
    written before the cut); ``no_answer_section``: responses without a final-answer heading, which are graded
    on their whole text. A row without ``truncated`` (an old answer log) counts as not cut off.
    """
    cut = [r for r in rows if r.get("truncated")]
    return {
        "truncated": len(cut) / max(len(rows), 1),
        "truncated_n": len(cut),
        "truncated_correct": sum(bool(r.get("correct")) for r in cut),
        "no_answer_section": sum(parse_response(r.get("response", "")).answer is None for r in rows),
    }
