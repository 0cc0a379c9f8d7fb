"""Stage identity: a resume from other starting weights is refused naming field, saved value and given value."""

from __future__ import annotations

import pytest

from pebr_lit.resume.identity import check_identity, init_identity, stage_identity


def _identity(init_from, base="tiny-vlm", reference="ModelCopyReference"):
    return stage_identity(init_identity(init_from), base, reference)


@pytest.fixture
def start(tmp_path):
    path = tmp_path / "stage1.ckpt"
    path.write_bytes(b"stage-1 weights")
    return path


def test_the_same_identity_resumes_and_the_same_bytes_elsewhere_resume_with_a_note(start, tmp_path):
    assert check_identity(_identity(str(start)), _identity(str(start)), "last.ckpt") == []
    copy = tmp_path / "copy.ckpt"
    copy.write_bytes(start.read_bytes())
    (note,) = check_identity(_identity(str(start)), _identity(str(copy)), "last.ckpt")
    assert "same bytes" in note and str(copy) in note


def test_init_from_dropped_on_resume_is_refused_with_the_fix(start):
    with pytest.raises(ValueError) as err:
        check_identity(_identity(str(start)), _identity(None), "runs/x/last.ckpt")
    message = str(err.value)
    assert f"init_from: saved '{start}', given null (no init_from)" in message
    assert f"--model.init_args.init_from={start}" in message and "--ckpt_path runs/x/last.ckpt" in message


def test_a_rewritten_init_from_file_and_other_settings_are_refused_together(start):
    saved = _identity(str(start))
    start.write_bytes(b"a rerun of stage 1")
    with pytest.raises(ValueError) as err:
        check_identity(saved, _identity(str(start), base="other-vlm", reference=None), None)
    message = str(err.value)
    assert "has changed since the stage started" in message
    assert "base_model: saved 'tiny-vlm', given 'other-vlm'" in message
    assert "reference: saved 'ModelCopyReference', given None" in message


def test_a_checkpoint_without_an_identity_resumes_with_a_note():
    (note,) = check_identity(None, _identity(None), "old.ckpt")
    assert "old.ckpt records no stage identity" in note
