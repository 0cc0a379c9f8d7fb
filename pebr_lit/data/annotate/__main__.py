"""``python -m pebr_lit.data.annotate``: fill records' description, keywords and warm-up answers with a teacher.

    python -m pebr_lit.data.annotate --records data/rl.jsonl --out runs/annotate \\
        --teacher.model Qwen/Qwen2.5-VL-72B-Instruct --teacher.base_url http://localhost:30000/v1 \\
        --tasks '[description, keywords]'
    python -m pebr_lit.data.annotate --config configs/annotate/teacher.yaml   # the same, from a file

The arguments are ``annotate``'s signature (jsonargparse: ``--print_config`` writes a config to start
from; ``--teacher teacher.yaml`` reads the teacher group alone). Exit status 0 on success, 1 on a data
error or an unusable endpoint, 2 on a usage error.

Left out on purpose: the work itself (``annotate.run``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Literal

from pebr_lit.data.annotate.client import ChatEndpoint, EndpointError
from pebr_lit.data.annotate.run import Annotator, ReplyCache, annotate_all, make_client, read_records
from pebr_lit.data.annotate.summary import Summary
from pebr_lit.data.annotate.tasks import TASKS, load_prompts
from pebr_lit.data.records import load_records

Task = Literal["description", "keywords", "response"]


def annotate(
    records: list[str],
    out: str,
    teacher: ChatEndpoint | None = None,
    tasks: list[Task] | None = None,
    keywords_from: Literal["teacher", "yake"] | None = None,
    max_keywords: int = 12,
    max_tries: int = 4,
    tier: Literal["easy", "medium", "hard"] | None = None,
    tiers: str | None = None,
    image_max_side: int | None = 1024,
    image_root: str | None = None,
    prompts: str | None = None,
    cache: str | None = None,
    limit: int | None = None,
    dry_run: bool = False,
    dry_run_count: int = 3,
    progress_bar: bool = True,
) -> Summary | None:
    """Annotate records with a teacher model and write ``<out>/records.jsonl`` and ``<out>/summary.json``.

    Args:
        records: Record files (any form ``data.records.load_records`` reads), annotated in order.
        out: Output folder: records.jsonl, summary.json, progress shards and (by default) the reply cache.
        teacher: The teacher endpoint; null = no teacher (only ``keywords`` from existing descriptions, by yake).
        tasks: Fields to fill, in order: ``description``, ``keywords``, ``response``; null = description and
            keywords (all three when ``tier`` is given).
        keywords_from: ``teacher`` (asked from the description) or ``yake`` (offline); null = teacher if given.
        max_keywords: Most keywords kept per record.
        max_tries: Warm-up answers asked per record until one grades correct (rejection sampling).
        tier: Write warm-up answers only for this tier's questions (needs ``tiers``).
        tiers: Folder written by ``python -m pebr_lit.data.tiers`` (``<tier>.jsonl`` is read).
        image_max_side: Longest image side sent, in pixels (larger images are shrunk); null = as they are.
        image_root: Folder relative image paths start from; default each record file's folder.
        prompts: Folder of prompt templates (description.txt, keywords.txt, response.txt) replacing the shipped ones.
        cache: Reply cache file (JSONL); null = ``<out>/cache.jsonl``.
        limit: Annotate only the first this many records.
        dry_run: Print the first prompts (images shortened) and send nothing.
        dry_run_count: How many prompts ``dry_run`` prints.
        progress_bar: Show a progress bar (on a terminal) with throughput and token counts.
    """
    if tasks is None:
        tasks = ["description", "keywords", "response"] if tier else ["description", "keywords"]
    tasks = [t for t in TASKS if t in tasks]  # the order the tasks depend on each other
    keywords_from = keywords_from or ("teacher" if teacher is not None else "yake")
    if teacher is None and (set(tasks) - {"keywords"} or keywords_from == "teacher"):
        raise ValueError(
            f"tasks {tasks} with keywords_from={keywords_from!r} need a teacher: give --teacher.model and "
            "--teacher.base_url, or ask only --tasks '[keywords]' --keywords_from yake."
        )
    if (tier is None) != (tiers is None):
        raise ValueError("--tier and --tiers go together: --tiers DIR (from pebr_lit.data.tiers) --tier hard.")
    if max_tries < 1:
        raise ValueError(f"--max_tries={max_tries}: must be >= 1.")
    rows = read_records(records, image_root, limit)
    response_qids = None
    if tier is not None:
        tier_file = Path(tiers) / f"{tier}.jsonl"
        response_qids = {r.qid for r in load_records(tier_file, allow_outside_root=True, allow_text_only=True)}
    out_dir = Path(out)
    client = make_client(teacher)
    annotator = Annotator(
        client,
        ReplyCache(None if dry_run else Path(cache) if cache else out_dir / "cache.jsonl"),
        load_prompts(prompts),
        tasks,
        max_tries,
        image_max_side,
        max_keywords,
        keywords_from,
        response_qids,
    )
    if dry_run:
        for record in rows[:dry_run_count]:
            print(f"--- {record.source} (qid {record.qid})")
            print(json.dumps(shortened(annotator.messages_for(record)), indent=2, ensure_ascii=False))
        print(f"dry run: {min(dry_run_count, len(rows))} of {len(rows)} prompts shown, nothing sent.")
        return None
    summary = Summary()
    annotate_all(rows, out_dir, annotator, summary, teacher.max_workers if teacher else 1, progress_bar)
    print(summary.line())
    return summary


def shortened(messages: list[dict]) -> list[dict]:
    """Messages with each image data URL cut to its first 48 characters and its length."""
    text = json.dumps(messages)
    value = json.loads(text)
    for message in value:
        for part in message["content"] if isinstance(message["content"], list) else []:
            url = part.get("image_url", {}).get("url")
            if url:
                part["image_url"]["url"] = f"{url[:48]}... ({len(url)} chars)"
    return value


def main(argv: list[str] | None = None) -> None:
    from jsonargparse import CLI

    try:
        CLI(annotate, args=argv, as_positional=False)
    except (ValueError, EndpointError) as e:  # RecordError included: the message names file, row and field
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
