"""TieredDataModule contract: tiers chosen by name, clear errors for missing/empty tiers, a held-out
split disjoint from training, and a training stream that resumes at the saved position."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from pebr_lit.data.records import load_records, write_records
from pebr_lit.data.tiered_datamodule import TieredDataModule
from pebr_lit.modules.reasoning import ReasoningGRPO

EASY, MEDIUM = 24, 40  # of the world's 64 training records; Hard is empty


@pytest.fixture(scope="module")
def tiers_dir(world, tmp_path_factory) -> Path:
    """easy.jsonl (first 24 train records), medium.jsonl (the other 40), hard.jsonl (empty), as data.tiers
    writes them."""
    records = load_records(world / "train.jsonl")
    out = tmp_path_factory.mktemp("tiers")
    write_records(records[:EASY], out / "easy.jsonl")
    write_records(records[EASY:], out / "medium.jsonl")
    write_records([], out / "hard.jsonl")
    return out


def _qids(path: Path) -> list[str]:
    return [r.qid for r in load_records(path, allow_outside_root=True)]


def _dm(tiers_dir, processor, rollout_batches=0, **kw) -> TieredDataModule:
    """A module attached to a stub trainer whose LightningModule is stage 2 (default tier: medium), offering
    what ``pebr_lit.data.contracts`` asks of it."""
    # The tier files point back at the world's images, as data.tiers writes them (and the configs allow).
    dm = TieredDataModule(tiers_dir=str(tiers_dir), batch_size=4, **{"allow_outside_root": True, **kw})
    module = SimpleNamespace(
        default_tiers=ReasoningGRPO.default_tiers, rollout_batches=rollout_batches, processor=processor
    )
    dm.trainer = SimpleNamespace(lightning_module=module, global_rank=0, world_size=1)
    return dm


def test_tiers_are_selected_by_name_and_default_to_the_stage(tiers_dir, policy):
    chosen = _dm(tiers_dir, policy.processor, tiers=["easy", "medium"])
    chosen.setup("fit")
    assert [r.qid for r in chosen.records["fit"]] == _qids(tiers_dir / "easy.jsonl") + _qids(tiers_dir / "medium.jsonl")
    default = _dm(tiers_dir, policy.processor)  # tiers null: ReasoningGRPO's default, medium
    default.setup("fit")
    assert [r.qid for r in default.records["fit"]] == _qids(tiers_dir / "medium.jsonl")
    assert len(default.records["fit"]) == MEDIUM and "validate" not in default.records


def test_empty_or_missing_tier_is_an_error_naming_the_file_and_what_to_do(tiers_dir, policy, tmp_path):
    empty = _dm(tiers_dir, policy.processor, tiers=["hard"])
    with pytest.raises(ValueError, match=r"hard\.jsonl: tier 'hard' holds no questions.*data\.init_args\.tiers"):
        empty.setup("fit")
    missing = _dm(tmp_path, policy.processor, tiers=["easy"])
    with pytest.raises(
        ValueError, match=r"easy\.jsonl: no tier file.*configs/demo/sample\.yaml.*pebr_lit\.data\.tiers"
    ):
        missing.setup("fit")


def test_bad_settings_fail_at_construction():
    with pytest.raises(ValueError, match="among"):
        TieredDataModule(tiers_dir="x", tiers=["medium", "tricky"])
    with pytest.raises(ValueError, match="once"):
        TieredDataModule(tiers_dir="x", tiers=["easy", "easy"])
    with pytest.raises(ValueError, match=r"^TieredDataModule\.val_files=\['val\.jsonl'\]: .*Keep one"):
        TieredDataModule(tiers_dir="x", val_files=["val.jsonl"], val_size=4)
    with pytest.raises(ValueError, match="not both"):
        TieredDataModule(tiers_dir="x", val_size=4, val_fraction=0.1)


def test_held_out_questions_are_never_trained_on_and_the_split_is_seeded(tiers_dir, policy):
    dm = _dm(tiers_dir, policy.processor, val_size=8, epochs=3.0)
    dm.setup("fit")
    train = {r.qid for r in dm.records["fit"]}
    held = [r.qid for r in dm.records["validate"]]
    assert len(held) == 8 and not train & set(held) and train | set(held) == set(_qids(tiers_dir / "medium.jsonl"))
    served = {r.qid for batch in dm.train_stream(0) for r in batch["records"]}
    assert served == train  # 3 epochs of 32 records in batches of 4 reach every training record, no held-out one
    assert len(list(dm.val_dataloader())) == 1  # eval_batch_size 32 >= 8 held-out records

    again = _dm(tiers_dir, policy.processor, val_fraction=0.2)  # ceil(0.2 * 40) = 8, same seed: same questions
    again.setup("validate")
    assert [r.qid for r in again.records["validate"]] == held
    other = _dm(tiers_dir, policy.processor, val_size=8, seed=1)
    other.setup("fit")
    assert [r.qid for r in other.records["validate"]] != held


def test_training_resumes_at_the_saved_position(tiers_dir, policy):
    straight = _dm(tiers_dir, policy.processor, epochs=2.0)
    straight.setup("fit")
    batches = list(straight.train_dataloader())
    full = [[r.qid for r in b["records"]] for b in batches]
    assert len(full) == 2 * MEDIUM // 4
    assert [b["stream_last"] for b in batches] == [False] * (len(full) - 1) + [True]  # online filtering's end signal
    resumed = _dm(
        tiers_dir, policy.processor, rollout_batches=7, epochs=2.0
    )  # module restored from a checkpoint at batch 7
    resumed.setup("fit")
    assert [[r.qid for r in b["records"]] for b in resumed.train_dataloader()] == full[7:]
