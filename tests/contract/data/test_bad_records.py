"""Bad records at a DataModule's set-up: every one in one error (on_bad_record: error), or left out, counted,
logged and listed (skip); files that cannot be read are errors either way."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from lightning.pytorch.loggers import CSVLogger
from PIL import Image

from pebr_lit.data.bad_records import BadRecords
from pebr_lit.data.prompt_datamodule import PromptDataModule
from pebr_lit.data.sft_datamodule import SFTDataModule
from pebr_lit.data.tiered_datamodule import TieredDataModule
from pebr_lit.modules.reasoning import ReasoningGRPO

#: Rows (1-based) of the file ``data`` writes that are bad, and the field each is refused for.
BAD = {2: "images[0]", 3: "images[0]", 4: "problem", 5: "response", 6: "images[0]"}


@pytest.fixture
def data(world, tmp_path: Path) -> Path:
    """<tmp>/d/train.jsonl: 8 of the world's training rows, rows 2-6 broken in one way each."""
    rows = [json.loads(line) for line in (world / "train.jsonl").read_text().splitlines()[:8]]
    folder = tmp_path / "d"
    for r in rows:
        (folder / r["images"][0]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(world / r["images"][0], folder / r["images"][0])
    (folder / "junk.png").write_bytes(os.urandom(100))
    Image.new("RGB", (5, 5)).save(folder / "tiny.png")
    rows[1]["images"] = ["junk.png"]  # corrupt
    rows[2]["images"] = ["tiny.png"]  # 5x5 px
    rows[3]["problem"] = "How many \ud800?"  # a lone surrogate
    rows[4]["response"] = None  # no SFT target
    rows[5]["images"] = ["../../etc/hostname"]  # outside the image root
    path = folder / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _trainer(tmp_path: Path, processor) -> SimpleNamespace:
    logger = CSVLogger(str(tmp_path / "logs"), name="", version="")
    module = SimpleNamespace(processor=processor, rollout_batches=0, default_tiers=ReasoningGRPO.default_tiers)
    return SimpleNamespace(
        lightning_module=module,
        log_dir=logger.log_dir,
        default_root_dir=str(tmp_path),
        is_global_zero=True,
        loggers=[logger],
        global_rank=0,
        world_size=1,
    )


def test_error_lists_every_bad_row_in_one_message_and_a_report(data: Path, policy, tmp_path: Path):
    dm = SFTDataModule(train_files=[str(data)], bad_records_dir=str(tmp_path / "bad"), processor=policy.processor)
    with pytest.raises(BadRecords) as info:
        dm.setup("fit")
    message = str(info.value)
    assert message.startswith(f"fit: 5 problem(s) in {data}: 5 bad row(s) of 8 read\n")
    for n, name in BAD.items():
        assert f"\n  {data}:row {n}: field '{name}': " in message
    assert f"All 5 are listed in {tmp_path / 'bad' / 'fit.jsonl'}" in message and "on_bad_record: skip" in message
    listed = [json.loads(line) for line in (tmp_path / "bad" / "fit.jsonl").read_text().splitlines()]
    assert {r["row"]: r["field"] for r in listed} == BAD and {r["split"] for r in listed} == {"fit"}
    assert {p.field for p in info.value.problems} == set(BAD.values())


def test_skip_leaves_them_out_counts_logs_and_lists_them(data: Path, policy, tmp_path: Path):
    dm = SFTDataModule(train_files=[str(data)], on_bad_record="skip")
    dm.trainer = _trainer(tmp_path, policy.processor)
    with pytest.warns(UserWarning) as caught:
        dm.setup("fit")
    assert [r.source for r in dm.datasets["fit"].records] == [f"{data}:row {n}" for n in (1, 7, 8)]
    assert dm.bad_records == {"fit": 5}
    report = Path(dm.trainer.log_dir) / "bad_records" / "fit.jsonl"
    (warning,) = [str(w.message) for w in caught if "bad row" in str(w.message)]
    assert warning.startswith("fit: skipped 5 bad row(s) of 8, as on_bad_record: skip says; every one is listed in")
    assert str(report) in warning and f"{data}:row 2, {data}:row 3, {data}:row 4, ..." in warning
    assert sorted(json.loads(line)["row"] for line in report.read_text().splitlines()) == sorted(BAD)
    logger = dm.trainer.loggers[0]
    assert logger.experiment.hparams["data/bad_records/fit"] == 5  # written to hparams.yaml with the run's


def test_skip_in_a_grpo_stage_and_files_that_cannot_be_read(data: Path, policy, tmp_path: Path):
    dm = PromptDataModule(train_files=[str(data)], on_bad_record="skip", batch_size=2, processor=policy.processor)
    dm.trainer = _trainer(tmp_path, policy.processor)
    with pytest.warns(UserWarning, match="skipped 4 bad row"):  # a missing response is no problem for GRPO
        dm.setup("fit")
    assert len(dm.records["fit"]) == 4 and dm.bad_records == {"fit": 4}
    broken = tmp_path / "broken.json"
    broken.write_text("[{")
    for files in ([str(broken)], [str(tmp_path / "gone.jsonl")]):
        dm = PromptDataModule(train_files=files, on_bad_record="skip", processor=policy.processor)
        with pytest.raises(BadRecords, match="a file that cannot be read has no rows to skip"):
            dm.setup("fit")


def test_tiered_pool_is_checked_per_tier(data: Path, policy, tmp_path: Path):
    tiers = data.parent
    shutil.copy(data, tiers / "medium.jsonl")
    dm = TieredDataModule(tiers_dir=str(tiers), on_bad_record="skip", batch_size=2)
    dm.trainer = _trainer(tmp_path, policy.processor)
    with pytest.warns(UserWarning, match="tier medium: skipped 4 bad row"):
        dm.setup("fit")
    assert len(dm.records["fit"]) == 4 and dm.bad_records == {"tier medium": 4}
    assert (Path(dm.trainer.log_dir) / "bad_records" / "tier_medium.jsonl").is_file()
