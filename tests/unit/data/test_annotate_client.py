"""annotate.client against the stand-in teacher: retries, timeout, malformed replies, and the endpoint probe."""

from __future__ import annotations

import pytest

from pebr_lit.data.annotate.client import ChatClient, ChatEndpoint, EndpointError, RequestFailed
from tests.helpers.teacher_server import HANG, MALFORMED, TeacherServer

HELLO = [{"role": "user", "content": "hello"}]


def teacher(url: str, **kw) -> ChatEndpoint:
    return ChatEndpoint(**{"model": "teacher", "base_url": url, "api_key_env": None, "backoff_s": 0.01, **kw})


def test_500_then_success_is_retried():
    answers = iter([500, 429, "fine"])
    with TeacherServer(lambda body: next(answers)) as server:
        client = ChatClient(teacher(server.url, retries=2))
        reply = client.chat(HELLO)
    assert reply.text == "fine" and reply.completion_tokens == 1 and reply.prompt_tokens == 10
    assert len(server.chats) == 3 and client.retried == 2


def test_failure_after_all_retries_names_the_reason():
    with TeacherServer(lambda body: 503) as server:
        with pytest.raises(RequestFailed) as info:
            ChatClient(teacher(server.url, retries=2)).chat(HELLO)
    assert info.value.reason == "http_503" and len(server.chats) == 3  # 1 try + 2 retries


def test_a_bad_request_is_not_retried():
    with TeacherServer(lambda body: 400) as server:
        with pytest.raises(RequestFailed, match="http_400"):
            ChatClient(teacher(server.url, retries=3)).chat(HELLO)
    assert len(server.chats) == 1


def test_timeout_is_retried_then_counted():
    with TeacherServer(lambda body: HANG, hang_s=1.0) as server:
        with pytest.raises(RequestFailed) as info:
            ChatClient(teacher(server.url, retries=1, timeout_s=0.2)).chat(HELLO)
    assert info.value.reason == "timeout" and len(server.chats) == 2


def test_malformed_reply():
    with TeacherServer(lambda body: MALFORMED) as server:
        with pytest.raises(RequestFailed) as info:
            ChatClient(teacher(server.url, retries=1)).chat(HELLO)
    assert info.value.reason == "malformed_reply" and len(server.chats) == 2


def test_probe_wrong_model_names_the_served_ones():
    with TeacherServer(lambda body: "x", models=("qwen-vl-72b",)) as server:
        with pytest.raises(EndpointError, match="serves no model 'teacher'.*qwen-vl-72b"):
            ChatClient(teacher(server.url)).check()
    assert server.chats == []


def test_probe_bad_key(monkeypatch):
    monkeypatch.setenv("TEACHER_KEY", "wrong")
    with TeacherServer(lambda body: "x", key="right") as server:
        with pytest.raises(EndpointError, match="refused the key: HTTP 401.*TEACHER_KEY"):
            ChatClient(teacher(server.url, api_key_env="TEACHER_KEY")).check()
        monkeypatch.setenv("TEACHER_KEY", "right")
        ChatClient(teacher(server.url, api_key_env="TEACHER_KEY")).check()  # the right key passes


def test_probe_unreachable_url():
    with TeacherServer(lambda body: "x") as server:
        url = server.url
    with pytest.raises(EndpointError, match="unreachable"):
        ChatClient(teacher(url, timeout_s=2)).check()
