"""One final-answer contract: every grader under every rule set agrees on what the answer is (no section, two
sections, letter vs text, sentence-wrapped letters, LaTeX), and pebr-lit's reward gives the benchmark scorer's
verdict on the same response.

The authors' verdicts come from running mathruler's ``grade_answer`` (the authors' grader, as their
``examples/reward_function/pebr_2.py`` in cythu/PeBR-R1 calls it) on the first answer line; VLMEvalKit's letter
reading (``can_infer_option`` in vlmeval/utils/matching_util.py, open-compass/VLMEvalKit at
e8e78f05f3080fe28154f2130321f17951c3be94) was read to pick agreement cases on which it reads the same letter.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pebr_lit.eval.benchmarks.base import CHOICE, Benchmark, BenchmarkItem
from pebr_lit.rewards.grading import grade, math_verify_grade, mathruler_grade
from pebr_lit.rewards.rules import AuthorsRules, PebrLitRules
from tests.helpers.responses import full, texts

GRADERS = {"grade": grade, "mathruler_grade": mathruler_grade, "math_verify_grade": math_verify_grade}
RULE_SETS = {
    "pebr_lit": PebrLitRules(),
    "authors": AuthorsRules(no_section="none"),  # the contract's setting; the default is the authors' fallback
    "pebr_lit/authors-line": PebrLitRules(final_answer="authors"),
    "authors/pebr-lit-section": AuthorsRules(final_answer="pebr_lit", no_section="none"),
}
EVERY = [(r, g) for r in RULE_SETS for g in GRADERS]


def accuracy(rules: str, grader: str, response: object, truth: str) -> float:
    return RULE_SETS[rules].accuracy(response, truth, GRADERS[grader])


# ------------------------------------------------------------------------------------------- no section
# Without an answer heading math-verify finds "5" (or B) in the text and said 1; mathruler said 0 on the same text.
NO_SECTION = [
    ("Step 1: 2 + 3 = 5. So the result is 5.", "5"),
    ("### Step 1: 2 + 3 = 5\n\\boxed{5}", "5"),
    ("5", "5"),
    ("The answer is B", "B"),
    ("", "5"),
]


@pytest.mark.parametrize(("rules", "grader"), EVERY)
@pytest.mark.parametrize(("response", "truth"), NO_SECTION)
def test_no_answer_section_is_no_answer_under_every_grader_and_rule_set(rules, grader, response, truth) -> None:
    assert accuracy(rules, grader, response, truth) == 0.0


def test_the_authors_whole_response_fallback_is_a_named_choice_and_their_default() -> None:
    scripts = AuthorsRules()  # faithful by default: their scripts grade the whole response without a heading
    assert scripts.no_section == "whole_response"
    # mathruler compares the whole text, math-verify searches it: the difference the contract removes by default.
    assert scripts.accuracy("5", "5", mathruler_grade) == 1.0
    assert scripts.accuracy(NO_SECTION[0][0], "5", mathruler_grade) == 0.0
    assert scripts.accuracy(NO_SECTION[0][0], "5", math_verify_grade) == 1.0


# ------------------------------------------------------------------------------------------ two sections
@pytest.mark.parametrize("grader", GRADERS)
def test_two_sections_pebr_lit_reads_the_last_the_authors_the_first(grader) -> None:
    response = full(answer="4") + "\n### The final answer is: 3"
    assert accuracy("pebr_lit", grader, response, "3") == 1.0 and accuracy("pebr_lit", grader, response, "4") == 0.0
    assert accuracy("authors", grader, response, "4") == 1.0 and accuracy("authors", grader, response, "3") == 0.0
    assert accuracy("pebr_lit/authors-line", grader, response, "4") == 1.0
    assert accuracy("authors/pebr-lit-section", grader, response, "3") == 1.0


# ------------------------------------------------------------------------------ letters, text and LaTeX
# (final answer, pebr-lit verdict against truth B under every grader, authors' verdict under mathruler_grade)
LETTERS = [
    ("B", 1, 1),
    ("(B)", 1, 1),
    ("[B]", 1, 1),
    ("\\boxed{B}", 1, 1),
    ("$\\boxed{B}$", 1, 1),
    ("\\text{B}", 1, 1),
    ("B.", 1, 0),  # mathruler alone keeps the period
    ("**B**", 1, 0),
    ("The answer is B", 1, 0),
    ("The correct answer is (B).", 1, 0),
    ("Option B", 1, 0),
    ("B. 42", 1, 0),
    ("B) 42 apples", 1, 0),
    ("I choose B.", 1, 0),
    ("42", 0, 0),  # option B's text: the reward knows no options
    ("A or B", 0, 0),  # hedged
    ("The answer is A or B.", 0, 0),  # hedged after a marker
    ("(A) is wrong, (C) is right", 0, 0),
    ("The answer is C", 0, 0),
    ("A large red circle", 0, 0),
]


@pytest.mark.parametrize("grader", GRADERS)
@pytest.mark.parametrize(("answer", "pebr_lit", "authors"), LETTERS)
def test_letter_answers_per_rule_set(grader, answer, pebr_lit, authors) -> None:
    response = full(answer=answer)
    assert accuracy("pebr_lit", grader, response, "B") == pebr_lit  # the letter rule, whatever the grader
    if grader == "mathruler_grade":
        assert accuracy("authors", grader, response, "B") == authors
    if not pebr_lit:
        assert accuracy("authors", grader, response, "B") == 0.0  # no grader finds B where pebr-lit's rule does not


@pytest.mark.parametrize(
    ("answer", "truth", "grader", "expected"),
    [
        ("\\boxed{42}", "42", "grade", 1.0),
        ("\\boxed{42}", "42", "mathruler_grade", 1.0),
        ("\\boxed{42}", "42", "math_verify_grade", 1.0),
        ("$\\frac{1}{2}$", "0.5", "mathruler_grade", 1.0),
        ("$\\frac{1}{2}$", "0.5", "math_verify_grade", 1.0),
        ("\\boxed{43}", "42", "math_verify_grade", 0.0),
    ],
)
@pytest.mark.parametrize("rules", RULE_SETS)
def test_latex_boxed_answers(rules, answer, truth, grader, expected) -> None:
    assert accuracy(rules, grader, full(answer=answer), truth) == expected


# ----------------------------------------------------------------------- reward == benchmark scorer
OPTIONS = ("12", "42", "7", "9")
ITEM = BenchmarkItem(qid="q1", problem="Which?", answer="B", images=(), kind=CHOICE, options=OPTIONS)
# Section-present answers on which pebr-lit's letter rule, the benchmark scorer and VLMEvalKit's can_infer_option
# read the same letter (or none).
HEDGES = ["A or B", "The answer is A or B."]  # name two options: no answer from the reward or the lenient scorer
AGREE = [a for a, _, _ in LETTERS if a != "42" and a not in HEDGES]


@pytest.mark.parametrize("grader", GRADERS)
@pytest.mark.parametrize("answer", [*AGREE, *HEDGES])
def test_reward_and_benchmark_scorer_give_the_same_verdict(grader, answer) -> None:
    response = full(answer=answer)
    scored = Benchmark("unused").score(response, ITEM)
    assert bool(accuracy("pebr_lit", grader, response, "B")) is bool(scored["correct"])


@pytest.mark.parametrize("answer", [*AGREE, *HEDGES])
def test_reward_and_vlmevalkit_can_infer_give_the_same_verdict(answer) -> None:
    # The scorers' VLMEvalKit mode (MMStar, AI2D, ...) reads letters with can_infer; it lands with the
    # multiple-choice scoring modes of #16, and this test runs once it has.
    rules = pytest.importorskip("pebr_lit.eval.vlmevalkit_rules")
    read = rules.can_infer(answer, dict(zip("ABCD", OPTIONS)))
    for grader in GRADERS:
        assert bool(accuracy("pebr_lit", grader, full(answer=answer), "B")) is (read == "B")


def test_where_the_reward_and_the_scorer_differ_by_design() -> None:
    scorer = Benchmark("unused")
    # The scorer knows option B's text "42"; the reward knows only the letter.
    assert (
        scorer.score(full(answer="42"), ITEM)["correct"] and accuracy("pebr_lit", "grade", full(answer="42"), "B") == 0
    )
    # No section: evaluation grades the whole response (format.final_answer.EVALUATION), training has no answer.
    assert scorer.score("The answer is B", ITEM)["correct"]
    assert accuracy("pebr_lit", "grade", "The answer is B", "B") == 0.0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts, st.sampled_from(["3", "B", "(C)", "1/2", "x<3"]))
def test_fuzz_every_rule_set_and_grader_gives_0_or_1_and_nothing_without_a_section(text: str, truth: str) -> None:
    has_heading = "final answer is" in text.lower()
    for rules, grader in EVERY:
        value = accuracy(rules, grader, text, truth)
        assert value in (0.0, 1.0)
        if not has_heading:
            assert value == 0.0


@pytest.mark.parametrize("response", ["The answer is A or B.", full(answer="The answer is A or B.")])
def test_a_hedge_after_a_marker_scores_nothing_with_or_without_a_section(response) -> None:
    # By hand: two option letters named -> no answer, whichever letter is the truth.
    for truth in ("A", "B"):
        item = BenchmarkItem(qid="q1", problem="Which?", answer=truth, images=(), kind=CHOICE, options=OPTIONS)
        assert not Benchmark("unused").score(response, item)["correct"]
        assert all(accuracy("pebr_lit", g, response, truth) == 0.0 for g in GRADERS)


def test_vlmevalkits_can_infer_reads_a_hedge_after_answer_is_as_its_first_letter() -> None:
    # By hand from can_infer_option (open-compass/VLMEvalKit e8e78f05): "A" and "B" are both counted (two: no
    # answer from the count), then its "(correct )?answer is X" pattern reads A. The reward and the lenient scorer
    # read no answer; the vlmevalkit modes (MMStar, AI2D, WeMath) follow VLMEvalKit. A named difference.
    rules = pytest.importorskip("pebr_lit.eval.vlmevalkit_rules")
    assert rules.can_infer("The answer is A or B.", dict(zip("ABCD", OPTIONS))) == "A"
    assert rules.can_infer("A or B", dict(zip("ABCD", OPTIONS))) is None
    assert accuracy("pebr_lit", "grade", full(answer="The answer is A or B."), "A") == 0.0
