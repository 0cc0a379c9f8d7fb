"""Conversations: chat-style SFT rows (the authors' LLaMA-Factory "messages" schema) -> record fields.

Two row shapes are read:
  - the authors' warm-up data: ``{"messages": [{"role", "content"}, ...], "images": [path, ...] | path}``,
    one ``user`` turn (the question; an ``<image>`` marker in it is kept as written) and one ``assistant``
    turn (the SFT target), optionally after one ``system`` turn (kept in ``meta["system"]``);
  - a pebr-lit record with a ``response`` (the SFT target), read as it is.
``read_sample`` splits a row into the texts a filter looks at; ``record_fields`` turns that into the dict
``records.record_from_dict`` validates. Both raise ``Unconvertible`` with a reason key (``REASONS``), the
field and what to do, so a caller can count the row or raise ``RecordError`` from it.

Left out on purpose: filter rules and image checks (``data.warmup_filter``), validation of the record
(``data.records``), ShareGPT's ``conversations``/``from``/``value`` spelling and multi-exchange chats.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pebr_lit.format.response import extract_answer, parse_response

#: The marker the authors' data uses where an image stands in the question.
IMAGE_MARKER = "<image>"

#: Why a row cannot become a record (the filter's unconvertible reasons), with a one-line meaning.
REASONS = {
    "unknown_schema": "neither 'messages' (the authors' schema) nor 'response' (a pebr-lit record)",
    "bad_messages": "'messages' is not a list of {role, content} turns with string content",
    "no_user_turn": "no user turn",
    "no_assistant_turn": "no assistant turn",
    "multi_turn": "more than one user/assistant exchange",
    "no_response": "the SFT target (assistant turn or 'response') is empty or not a string",
    "image_marker_mismatch": f"the question's {IMAGE_MARKER} markers do not match the number of images",
    "no_answer": "no final-answer section in the response and no 'answer' field",
}

_ROLES = ("system", "user", "assistant")
# Fields a messages row must not carry: they are built from the turns.
_BUILT = ("problem", "question", "response")


class Unconvertible(ValueError):
    """A row that cannot become a record: ``reason`` (a ``REASONS`` key or a filter's own), field, problem, fix."""

    def __init__(self, reason: str, problem: str, fix: str, field: str | None = None):
        self.reason, self.problem, self.fix, self.field = reason, problem, fix, field
        super().__init__(f"{reason}: {problem}")


@dataclass(frozen=True)
class Sample:
    """One row split into what the filter rules read and the record is built from."""

    user: tuple[str, ...]
    """Texts of the user turns (a pebr-lit record: its problem)."""
    assistant: tuple[str, ...]
    """Texts of the assistant turns (a pebr-lit record: its response); the rethink rule reads these."""
    images: tuple[Any, ...]
    """Raw image references in prompt order (paths as written, bytes, dicts, data URLs)."""
    fields: dict[str, Any] = field(default_factory=dict)
    """The row's other fields (``qid``/``id``, ``answer``, ``meta``, extras), passed on to the record."""
    system: tuple[str, ...] = ()
    """Texts of the system turns (one is kept in ``meta["system"]``)."""
    roles: tuple[str, ...] = ()
    """The turns' roles in order (empty for a pebr-lit record)."""
    is_record: bool = False
    """Whether the row was a pebr-lit record (its problem/answer are taken as given)."""

    def where(self, name: str | None) -> str | None:
        """The row's field that record field ``name`` came from (a messages row: the turn's content)."""
        role = {"problem": "user", "response": "assistant"}.get(name or "")
        if self.is_record or role not in self.roles:
            return name
        return f"messages[{self.roles.index(role)}].content"


def _images(row: dict[str, Any]) -> tuple[Any, ...]:
    if "images" in row and "image" in row:
        raise Unconvertible(
            "unknown_schema", "both 'images' and its alias 'image' are set", "Keep one of them", "images"
        )
    raw = row.pop("images", row.pop("image", None))
    if raw is None:
        return ()
    return tuple(raw) if isinstance(raw, (list, tuple)) else (raw,)  # one image given without a list


def _turns(messages: Any) -> list[tuple[str, str]]:
    fix = 'Write messages as [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]'
    if not isinstance(messages, list):
        raise Unconvertible("bad_messages", f"expected a list, got {type(messages).__name__}", fix, "messages")
    turns = []
    for i, turn in enumerate(messages):
        name = f"messages[{i}]"
        if not isinstance(turn, dict):
            raise Unconvertible("bad_messages", f"expected an object, got {type(turn).__name__}", fix, name)
        role, content = turn.get("role"), turn.get("content")
        if role not in _ROLES:
            raise Unconvertible("bad_messages", f"role {role!r} is not one of {', '.join(_ROLES)}", fix, f"{name}.role")
        if not isinstance(content, str):
            kind = type(content).__name__
            raise Unconvertible("bad_messages", f"content is a {kind}, not a string", fix, f"{name}.content")
        turns.append((role, content))
    return turns


def read_sample(row: Any) -> Sample:
    """Split one raw row into a ``Sample``; raise ``Unconvertible`` when its shape is unknown or malformed."""
    if not isinstance(row, dict):
        raise Unconvertible(
            "unknown_schema", f"expected an object, got {type(row).__name__}", "Write each row as a JSON object"
        )
    row = dict(row)
    if "messages" in row:
        turns = _turns(row.pop("messages"))
        for name in _BUILT:
            if name in row:
                fix = f"Remove '{name}': a messages row takes it from its turns"
                raise Unconvertible("unknown_schema", "set next to 'messages'", fix, name)
        return Sample(
            user=tuple(text for role, text in turns if role == "user"),
            assistant=tuple(text for role, text in turns if role == "assistant"),
            images=_images(row),
            fields=row,
            system=tuple(text for role, text in turns if role == "system"),
            roles=tuple(role for role, _ in turns),
        )
    if "response" in row:
        response = row.pop("response")
        problem = row.pop("problem", row.pop("question", None))
        return Sample(
            user=(problem,) if isinstance(problem, str) else (),
            assistant=(response,) if isinstance(response, str) else (),
            images=_images(row),
            fields={**row, "problem": problem, "response": response},
            is_record=True,
        )
    fix = "Give 'messages' with a user and an assistant turn, or a pebr-lit record with a 'response'"
    raise Unconvertible("unknown_schema", f"no 'messages' or 'response' (keys: {sorted(map(str, row))})", fix)


def _check_exchange(sample: Sample) -> None:
    roles = {"user": len(sample.user), "assistant": len(sample.assistant)}
    if roles["user"] == 0:
        raise Unconvertible("no_user_turn", "no user turn", "Add the question as a user turn", "messages")
    if roles["assistant"] == 0:
        raise Unconvertible("no_assistant_turn", "no assistant turn", "Add the target as an assistant turn", "messages")
    if roles["user"] > 1 or roles["assistant"] > 1 or len(sample.system) > 1:
        counts = f"{roles['user']} user, {roles['assistant']} assistant and {len(sample.system)} system turns"
        fix = "Keep one exchange per row (split the chat into rows)"
        raise Unconvertible("multi_turn", counts, fix, "messages")
    if sample.roles not in (("user", "assistant"), ("system", "user", "assistant")):
        order = " -> ".join(sample.roles)
        fix = "Order the turns system (optional), user, assistant"
        raise Unconvertible("bad_messages", f"turns in the order {order}", fix, "messages")


def record_fields(sample: Sample, default_qid: str, images: list[Any]) -> dict[str, Any]:
    """The raw record dict for ``records.record_from_dict``; raise ``Unconvertible`` when there is none.

    default_qid: the qid when the row has no ``qid``/``id`` (the caller's "<file stem>-<row>").
    images: the references to write (resolved by the caller), in the sample's order.
    """
    fields = dict(sample.fields)
    if sample.is_record:
        problem, response = fields.pop("problem"), fields.pop("response")
    else:
        _check_exchange(sample)
        problem, response = sample.user[0], sample.assistant[0]
        meta = fields.get("meta")
        if sample.system and isinstance(meta, dict | None):  # other meta values fail validation, as they should
            fields["meta"] = {**(meta or {}), "system": sample.system[0]}
    if not isinstance(response, str) or not response.strip():
        fix = "Give the row a non-empty target response or leave it out"
        raise Unconvertible("no_response", "empty or not a string", fix, sample.where("response"))
    markers = problem.count(IMAGE_MARKER) if isinstance(problem, str) else 0
    if markers and markers != len(images):
        fix = f"Write one {IMAGE_MARKER} per image, or none to put the images first"
        problem = f"{markers} marker(s) for {len(images)} image(s)"
        raise Unconvertible("image_marker_mismatch", problem, fix, sample.where("problem"))
    # A given answer is the ground truth (a pebr-lit record always has one); else the response's final answer.
    if fields.get("answer") is None:
        if not parse_response(response).answer:
            fix = "Give the row an 'answer' or end the response with its final-answer section"
            raise Unconvertible("no_answer", "no final-answer section", fix, sample.where("response"))
        fields["answer"] = extract_answer(response)
    if "qid" not in fields and "id" not in fields:
        fields["qid"] = default_qid
    return {**fields, "problem": problem, "response": response, "images": images}
