"""Judge answer extraction: requests, retries, cache, re-grading by the benchmark's rules, against a local
stub server."""

from __future__ import annotations

import pytest

from pebr_lit.eval.benchmarks.base import (
    CHOICE,
    FREE_FORM,
    YES_NO,
    Benchmark,
    BenchmarkItem,
)
from pebr_lit.eval.judge import (
    AnswerJudge,
    JudgeRequest,
    JudgeUnavailable,
    judge_messages,
    judge_rows,
    judge_stats,
)
from tests.helpers.judge_server import JudgeServer

# What the stub judge "reads" in a response: phrases the rules cannot turn into an answer.
READINGS = {
    "the second one": "B",
    "half of it": "1/2",
    "five": "5",
    "four": "4",
    "eight": "8",
    "three": "3",
    "on reflection": "No",
}


def stub_reply(message: str) -> str | int:
    """The stub judge's reply: the reading of the first phrase found; ``FAIL`` makes it error; else no answer."""
    response = message.split("Response:\n", 1)[-1].split("\n\nReply with", 1)[0].lower()
    if "fail" in response:
        return 500
    return next((answer for phrase, answer in READINGS.items() if phrase in response), "NONE")


def item(qid: str, kind: str, answer: str, options: tuple[str, ...] = ()) -> BenchmarkItem:
    return BenchmarkItem(qid=qid, problem=f"question {qid}", answer=answer, images=(), kind=kind, options=options)


def scored_rows(bench: Benchmark, items: list[BenchmarkItem], responses: list[str]) -> list[dict]:
    return [{"qid": it.qid, "response": r, **bench.score(r, it)} for it, r in zip(items, responses)]


def test_messages_carry_question_form_and_the_end_of_a_long_response():
    msgs = judge_messages(JudgeRequest("Which? (A) x (B) y", "x" * 50 + "the end", CHOICE), max_response_chars=20)
    assert msgs[0]["role"] == "system" and msgs[-1]["role"] == "user"
    last = msgs[-1]["content"]
    assert "Which? (A) x (B) y" in last and "letter of the option" in last
    assert "Response:\n..." + "x" * 13 + "the end\n" in last  # the last 20 characters: 13 x + "the end"
    assert "Yes or No" in judge_messages(JudgeRequest("q", "r", YES_NO), 100)[-1]["content"]


def test_fallback_judges_only_wrong_rows_and_regrades_with_the_rules(tmp_path):
    bench = Benchmark("unused")
    items = [
        item("1", CHOICE, "B", ("red", "blue")),
        item("2", FREE_FORM, "0.5"),
        item("3", YES_NO, "yes"),
        item("4", FREE_FORM, "7"),
        item("5", FREE_FORM, "3"),
    ]
    responses = [
        "I would go with the second one.",  # rules cannot read it; the judge's "B" is right
        "Half of it remains.",  # judged "1/2" equals 0.5 by the math grader
        "Yes",  # right by the rules already: never sent
        "no idea",  # the judge finds no answer
        "It is five.",  # judged, still wrong
    ]
    rows = scored_rows(bench, items, responses)
    assert [r["correct"] for r in rows] == [False, False, True, False, False]
    with JudgeServer(stub_reply) as server:
        judge = AnswerJudge(model="stub", base_url=server.url, api_key_env=None)
        judge_rows(judge, bench, rows, items)
        assert len(server.graded()) == 4
    assert [r["correct"] for r in rows] == [True, True, True, False, False]
    assert [r.get("judge_answer") for r in rows] == ["B", "1/2", None, "NONE", "5"]
    assert "judge_answer" not in rows[2] and rows[0]["choice"] == "B" and rows[3]["prediction"] == ""
    assert judge_stats(rows) == {
        "rule_accuracy": 0.2,
        "judged": 4,
        "judge_failed": 0,
        "judge_no_answer": 1,
        "judge_flipped": 2,
    }


def test_always_mode_lets_the_judge_reading_decide(tmp_path):
    bench = Benchmark("unused")
    items = [item("1", YES_NO, "yes")]
    rows = scored_rows(bench, items, ["Yes. But on reflection, it is not."])
    assert rows[0]["correct"] is True  # YOrN_Extraction finds "yes" and no "no"
    with JudgeServer(stub_reply) as server:
        judge_rows(AnswerJudge(model="stub", base_url=server.url, mode="always", api_key_env=None), bench, rows, items)
    assert rows[0]["correct"] is False and rows[0]["rule_correct"] is True
    assert judge_stats(rows)["judge_flipped"] == 1


def test_failed_requests_are_retried_then_counted_and_keep_the_rule_score(monkeypatch):
    monkeypatch.setattr("pebr_lit.data.annotate.client.time.sleep", lambda s: None)  # the shared HTTP client
    calls = {"n": 0}

    def flaky(message: str) -> str | int:
        if message == "Reply with OK.":
            return "OK"
        calls["n"] += 1
        return 503 if calls["n"] <= 2 or "FAIL" in message else stub_reply(message)

    bench = Benchmark("unused")
    items = [item("1", FREE_FORM, "4"), item("2", FREE_FORM, "4")]
    rows = scored_rows(bench, items, ["It is four.", "FAIL"])
    with JudgeServer(flaky) as server:
        judge = AnswerJudge(model="stub", base_url=server.url, api_key_env=None, max_workers=1, retries=2)
        judge_rows(judge, bench, rows, items)
    assert rows[0]["correct"] is True  # third attempt succeeded
    assert rows[1]["judge_answer"] is None and rows[1]["correct"] is False
    assert judge_stats(rows)["judge_failed"] == 1
    assert calls["n"] == 3 + 3  # 1 + 2 retries for each


def test_cache_answers_a_rerun_without_requests_and_survives_a_cut_last_line(tmp_path):
    cache = tmp_path / "judge.jsonl"
    bench = Benchmark("unused")
    items = [item("1", FREE_FORM, "4"), item("2", FREE_FORM, "9")]
    with JudgeServer(stub_reply) as server:
        judge = AnswerJudge(model="stub", base_url=server.url, api_key_env=None, cache=str(cache))
        judge_rows(judge, bench, scored_rows(bench, items, ["It is four.", "It is eight."]), items)
        assert len(server.graded()) == 2
    assert len(cache.read_text().splitlines()) == 2
    with open(cache, "a") as f:
        f.write('{"key": "cut mid-wri')  # a crash while appending
    rows = scored_rows(bench, items, ["It is four.", "It is eight."])
    with JudgeServer(stub_reply) as server:
        judge_rows(
            AnswerJudge(model="stub", base_url=server.url, api_key_env=None, cache=str(cache)), bench, rows, items
        )
        assert server.requests == []  # every answer came from the cache, no endpoint check either
    assert [r["judge_answer"] for r in rows] == ["4", "8"]
    with JudgeServer(stub_reply) as server:  # a new reply is appended after the torn line is cut off
        assert AnswerJudge(model="stub", base_url=server.url, api_key_env=None, cache=str(cache)).extract(
            [JudgeRequest("q", "three", FREE_FORM)]
        ) == ["3"]
    assert len(cache.read_text().splitlines()) == 3 and cache.read_text().endswith("\n")
    again = AnswerJudge(model="stub", cache=str(cache))  # no server: every answer must come from the file
    assert again.extract(
        [JudgeRequest("q", "three", FREE_FORM), JudgeRequest("question 1", "It is four.", FREE_FORM)]
    ) == ["3", "4"]
    cache.write_text("not json\n")
    with pytest.raises(ValueError, match=r"judge.jsonl:1: not a judge cache line"):
        AnswerJudge(model="stub", cache=str(cache)).extract([JudgeRequest("q", "r", FREE_FORM)])


def test_ranks_write_their_own_cache_files_and_read_all(tmp_path):
    cache = tmp_path / "judge.jsonl"
    with JudgeServer(stub_reply) as server:
        judge = AnswerJudge(model="stub", base_url=server.url, api_key_env=None, cache=str(cache))
        judge.for_rank(1, 2)
        judge.extract([JudgeRequest("q", "three", FREE_FORM)])
    assert not cache.exists() and (tmp_path / "judge.rank1.jsonl").is_file()
    with JudgeServer(stub_reply) as server:
        again = AnswerJudge(model="stub", base_url=server.url, api_key_env=None, cache=str(cache))
        assert again.extract([JudgeRequest("q", "three", FREE_FORM)]) == ["3"] and server.requests == []


def test_api_key_is_sent_as_bearer_token(monkeypatch):
    monkeypatch.setenv("PEBR_TEST_JUDGE_KEY", "sk-test")
    with JudgeServer(stub_reply) as server:
        AnswerJudge(model="m", base_url=server.url, api_key_env="PEBR_TEST_JUDGE_KEY").extract(
            [JudgeRequest("q", "four", FREE_FORM)]
        )
    assert {h.get("Authorization") for h in server.headers} == {"Bearer sk-test"}
    assert all(r["model"] == "m" and r["temperature"] == 0 for r in server.requests)


def test_unusable_endpoint_is_one_clear_error():
    with JudgeServer(lambda m: 401) as server:
        with pytest.raises(JudgeUnavailable, match=r"HTTP 401.*judge.model"):
            AnswerJudge(model="m", base_url=server.url).extract([JudgeRequest("q", "r", FREE_FORM)])
    with JudgeServer(stub_reply) as server:
        url = server.url
    with pytest.raises(JudgeUnavailable, match="unreachable"):
        AnswerJudge(model="m", base_url=url, timeout_s=2).extract([JudgeRequest("q", "r", FREE_FORM)])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"mode": "sometimes"}, r"^AnswerJudge\.mode='sometimes': .*Use one of"),
        ({"max_workers": 0}, r"^AnswerJudge\.max_workers=0: "),
        ({"base_url": "localhost:8000"}, r"^AnswerJudge\.base_url='localhost:8000': must start with http://"),
    ],
)
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AnswerJudge(model="m", **kwargs)


def test_reply_text_is_cleaned():
    with JudgeServer(lambda m: ' "12". ' if "twelve" in m else "OK") as server:
        assert AnswerJudge(model="m", base_url=server.url, api_key_env=None).extract(
            [JudgeRequest("q", "twelve", FREE_FORM)]
        ) == ["12"]
