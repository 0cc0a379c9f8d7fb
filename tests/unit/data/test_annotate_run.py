"""python -m pebr_lit.data.annotate against the stand-in teacher: tasks, rejection sampling, resume, cache, limits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from pebr_lit.data.annotate import run as annotate_run
from pebr_lit.data.annotate.__main__ import annotate, main
from pebr_lit.data.annotate.client import ChatEndpoint, EndpointError
from pebr_lit.data.records import load_records, write_records
from pebr_lit.format.response import INSTRUCTION, render_response
from tests.helpers.teacher_server import TeacherServer, user_text

DESCRIPTION = "A red square and two blue circles on a white background."


def pebr(answer: str) -> str:
    return render_response(DESCRIPTION, "Count the circles.", ["There are two circles."], answer)


def reply(body: dict) -> str:
    """Description, keyword and answer requests told apart by their prompt text (tasks.py's templates)."""
    text = user_text(body)
    if text.startswith("Describe the image"):
        return DESCRIPTION
    if "JSON list" in text:
        return '```json\n["red square", "two blue circles", "white background"]\n```'
    assert text.startswith(INSTRUCTION)
    return pebr("2")


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """Four records with one 64 x 48 image each; the answers are 2, 2, 3, 2 (q2's is never right)."""
    (tmp_path / "images").mkdir()
    rows = []
    for i in range(4):
        Image.new("RGB", (64, 48), (200, 10 * i, 10)).save(tmp_path / "images" / f"{i}.png")
        rows.append(
            {
                "qid": f"q{i}",
                "problem": "How many circles?",
                "answer": "3" if i == 2 else "2",
                "images": [f"images/{i}.png"],
                "source_set": "mine",
            }
        )
    write_records(rows, tmp_path / "rl.jsonl")
    return tmp_path / "rl.jsonl"


def teacher(url: str, **kw) -> ChatEndpoint:
    return ChatEndpoint(
        **{
            "model": "teacher",
            "base_url": url,
            "api_key_env": None,
            "backoff_s": 0.01,
            "max_workers": 2,
            "retries": 1,
            "timeout_s": 5,
            **kw,
        }
    )


def run(data: Path, out: Path, url: str, **kw):
    return annotate([str(data)], str(out), teacher(url), progress_bar=False, **kw)


def output(data: Path, out: Path):
    """The output read back by the project's loader (as SFT, sampling and stage 1 read records)."""
    return {r.qid: r for r in load_records(out / "records.jsonl", image_root=data.parent)}


def test_description_and_keywords(data, tmp_path):
    with TeacherServer(reply) as server:
        summary = run(data, tmp_path / "out", server.url, tasks=["description", "keywords"])
    records = output(data, tmp_path / "out")
    assert list(records) == ["q0", "q1", "q2", "q3"]
    assert records["q1"].description == DESCRIPTION
    assert records["q1"].key_words == ("red square", "two blue circles", "white background")
    assert records["q1"].meta == {"source_set": "mine"} and records["q1"].answer == "2"  # everything else kept
    assert records["q1"].response is None
    # 2 requests per record; the keyword request is the same for all four (same description): sent once,
    # even by two threads at once, then read from the cache
    assert summary.written == 4 and summary.failed == 0 and summary.cached == 3
    assert summary.filled == {"description": 4, "key_words": 4}
    assert summary.requests_sent == len(server.chats) == 5
    # token counts are the replies' usage (the stub: 10 in, one per word out)
    assert summary.prompt_tokens == 10 * len(server.chats)
    assert summary.completion_tokens == sum(len(reply(body).split()) for body in server.chats)
    image = server.chats[0]["messages"][0]["content"][0]["image_url"]["url"]
    assert image.startswith("data:image/png;base64,")
    written = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert written["written"] == 4 and written["failed"] == 0


def test_keywords_offline_with_yake_and_no_teacher(data, tmp_path):
    pytest.importorskip("yake")
    rows = [dict(json.loads(line), description=DESCRIPTION) for line in data.read_text().splitlines()]
    write_records(rows, data)
    summary = annotate([str(data)], str(tmp_path / "out"), tasks=["keywords"], progress_bar=False)
    words = output(data, tmp_path / "out")["q0"].key_words
    assert summary.requests_sent == 0 and 0 < len(words) <= 12
    assert any("red square" in w.lower() for w in words), words  # yake's top phrase of DESCRIPTION


def test_response_rejection_sampling(data, tmp_path):
    """q2's answer is 3 and the teacher always says 2: every try rejected, no response kept, counted."""
    with TeacherServer(reply) as server:
        summary = run(data, tmp_path / "out", server.url, tasks=["response"], max_tries=3)
    records = output(data, tmp_path / "out")
    assert records["q0"].response == pebr("2") and records["q2"].response is None
    assert summary.rejected == 1 and summary.rejected_tries == {"wrong_answer": 3}
    sft = load_records(tmp_path / "out" / "sft.jsonl", image_root=data.parent)
    assert [r.qid for r in sft] == ["q0", "q1", "q3"] and all(r.response == pebr("2") for r in sft)
    temps = [b["temperature"] for b in server.chats if user_text(b).startswith(INSTRUCTION)]
    assert len(temps) == 3 + 3 and sorted(temps) == [0.0, 0.0, 0.0, 0.0, 0.7, 0.7]  # retries sample


def test_response_only_for_a_tier(data, tmp_path):
    write_records(
        [{"qid": "q3", "problem": "p", "answer": "2", "images": [str(data.parent / "images/3.png")]}],
        tmp_path / "tiers" / "hard.jsonl",
    )
    with TeacherServer(reply) as server:
        run(data, tmp_path / "out", server.url, tasks=["response"], tier="hard", tiers=str(tmp_path / "tiers"))
    records = output(data, tmp_path / "out")
    assert [q for q, r in records.items() if r.response] == ["q3"] and len(server.chats) == 1


def test_failed_request_is_counted_written_and_redone(data, tmp_path):
    fail = {"on": True}  # every request carrying q1's image fails (the prompts are otherwise the same)
    url1 = annotate_run.image_data_url(str(data.parent / "images/1.png"))
    with TeacherServer(lambda body: 500 if fail["on"] and url1 in json.dumps(body) else reply(body)) as server:
        first = run(data, tmp_path / "out", server.url, tasks=["description"])
        assert first.failed == 1 and first.failure_reasons == {"description:http_500": 1} and first.written == 3
        assert output(data, tmp_path / "out")["q1"].description is None  # written, not dropped
        fail["on"] = False
        before = len(server.chats)
        second = run(data, tmp_path / "out", server.url, tasks=["description"])
    assert second.failed == 0 and second.resumed == 3 and second.written == 4
    assert len(server.chats) - before == 1  # only q1 again
    with pytest.raises(ValueError, match=r"tasks \['description'\], this one asks \['response'\].*another --out"):
        run(data, tmp_path / "out", "http://127.0.0.1:9/v1", tasks=["response"])


def test_resume_after_a_crash_mid_run(data, tmp_path, monkeypatch):
    real, calls = annotate_run.append_rows, []

    def crash_on_third(handle, rows):
        calls.append(handle.name.endswith("progress.rank0.jsonl"))
        if sum(calls) == 3 and calls[-1]:  # the third finished record (cache lines are written as before)
            handle.write(b'{"qid": "torn')  # a kill mid-write leaves a torn line, then the process dies
            handle.flush()
            raise KeyboardInterrupt
        real(handle, rows)

    out = tmp_path / "out"
    with TeacherServer(reply) as server:
        monkeypatch.setattr(annotate_run, "append_rows", crash_on_third)
        with pytest.raises(KeyboardInterrupt):
            run(data, out, server.url, tasks=["description"], cache=str(tmp_path / "none" / "c.jsonl"))
        monkeypatch.setattr(annotate_run, "append_rows", real)
        summary = run(data, out, server.url, tasks=["description"], cache=str(tmp_path / "none" / "c.jsonl"))
    assert summary.resumed == 2 and summary.written == 4
    records = output(data, out)
    assert sorted(records) == ["q0", "q1", "q2", "q3"] and all(r.description == DESCRIPTION for r in records.values())
    progress = [json.loads(line)["qid"] for line in (out / "progress.rank0.jsonl").read_text().splitlines()]
    assert sorted(progress) == ["q0", "q1", "q2", "q3"]  # each once: the torn line cut, none twice


def test_rerun_with_the_cache_sends_nothing(data, tmp_path):
    cache = str(tmp_path / "cache.jsonl")
    with TeacherServer(reply) as server:
        run(data, tmp_path / "a", server.url, cache=cache, tasks=["description", "keywords", "response"])
    with TeacherServer(reply) as again:
        summary = run(data, tmp_path / "b", again.url, cache=cache, tasks=["description", "keywords", "response"])
    assert again.chats == [] and again.probes == 0 and summary.cached == 4 + 4 + 3 + 4  # q2: 4 tries
    assert output(data, tmp_path / "b")["q0"].response == pebr("2")


def test_dry_run_sends_nothing_and_limit(data, tmp_path, capsys):
    with TeacherServer(reply) as server:
        assert run(data, tmp_path / "out", server.url, dry_run=True, dry_run_count=2) is None
        printed = capsys.readouterr().out
        assert server.chats == [] and server.probes == 0 and not (tmp_path / "out").exists()
        assert printed.count("--- ") == 2 and "Describe the image" in printed and "chars)" in printed
        summary = run(data, tmp_path / "out", server.url, limit=2, tasks=["description"])
    assert summary.records == 2 and list(output(data, tmp_path / "out")) == ["q0", "q1"]


@pytest.mark.parametrize("problem", ["model", "url"])
def test_bad_endpoint_is_one_error_before_any_work(data, tmp_path, problem, capsys):
    with TeacherServer(reply, models=("other",)) as server:
        url = server.url
        if problem == "model":
            with pytest.raises(EndpointError, match="serves no model 'teacher'"):
                run(data, tmp_path / "out", url)
            assert server.chats == [] and server.probes == 1  # the other thread reuses the probe's error
    if problem == "url":
        with pytest.raises(SystemExit) as info:
            main(
                [
                    "--records",
                    json.dumps([str(data)]),
                    "--out",
                    str(tmp_path / "out"),
                    "--teacher.model",
                    "teacher",
                    "--teacher.base_url",
                    url,
                    "--teacher.api_key_env",
                    "null",
                    "--progress_bar",
                    "false",
                ]
            )
        assert info.value.code == 1 and "unreachable" in capsys.readouterr().err
    assert not (tmp_path / "out" / "progress.rank0.jsonl").read_text()  # nothing done, nothing counted as done


def test_unreadable_image_is_counted_not_sent(data, tmp_path):
    (data.parent / "images" / "1.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    with TeacherServer(reply) as server:
        summary = run(data, tmp_path / "out", server.url, tasks=["description"])
    assert summary.failure_reasons == {"image:unreadable_image": 1} and summary.failed_examples[0]["qid"] == "q1"
    assert len(server.chats) == 3 and summary.written == 3


def test_kill_9_mid_run_then_rerun(data, tmp_path):
    """A real kill: the command in a child process, SIGKILLed once two records are done (4 s on 2 busy cores)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    def slow_reply(body: dict) -> str:
        time.sleep(1.0)  # 1 s per record: the poll below (every 0.05 s) sees 2 done long before the 4th
        return reply(body)

    out = tmp_path / "out"
    root = Path(__file__).resolve().parents[3]
    with TeacherServer(slow_reply) as server:
        args = [
            sys.executable,
            "-m",
            "pebr_lit.data.annotate",
            "--records",
            json.dumps([str(data)]),
            "--out",
            str(out),
            "--teacher.model",
            "teacher",
            "--teacher.base_url",
            server.url,
            "--teacher.api_key_env",
            "null",
            "--teacher.max_workers",
            "1",
            "--tasks",
            "[description]",
        ]
        env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
        child = subprocess.Popen(args, env=env, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        progress, deadline = out / "progress.rank0.jsonl", time.monotonic() + 120
        while time.monotonic() < deadline and child.poll() is None:
            if progress.is_file() and progress.read_bytes().count(b"\n") >= 2:
                break
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait()
        done_before = progress.read_bytes().count(b"\n")
        assert 2 <= done_before < 4, child.stderr.read().decode()
        sent_before = len(server.chats)
        summary = run(data, out, server.url, tasks=["description"])
    assert summary.resumed == done_before and summary.written == 4
    assert len(server.chats) - sent_before <= 4 - done_before  # a request in flight at the kill is in the cache
    assert sorted(json.loads(line)["qid"] for line in progress.read_text().splitlines()) == ["q0", "q1", "q2", "q3"]
