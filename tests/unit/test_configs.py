"""Every YAML under configs/ parses with the CLI as it is used (overlays on their bases; no model is loaded).

Also: the ``# overlay-of:`` expansion of ``cli.py``, and two drift guards: an overlay says only what
differs from its bases, and ``eval/all.yaml`` lists exactly the single-benchmark overlays' entries.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from cli import PeBRCLI, config_chain, expand_overlays, main

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "configs").rglob("*.yaml"))
BASES = [p for p in CONFIGS if p.name.startswith("_")]  # partials: only loaded under an overlay
LAUNCHED = [p for p in CONFIGS if p not in BASES]


def _id(p: Path) -> str:
    return str(p.relative_to(p.parents[1]))


def test_there_are_configs():
    assert LAUNCHED and BASES, "configs/ holds no launchable YAML or no base"


@pytest.mark.parametrize("path", LAUNCHED, ids=[_id(p) for p in LAUNCHED])
def test_config_parses(path, capsys):
    # --print_config parses and validates the whole file (its bases first) against the signatures, then exits.
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(path), "--print_config"], run=True)
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    assert "class_path" in printed and PeBRCLI.__name__


def test_every_base_is_used():
    # A base is parsed only through an overlay: one that no overlay names is never checked.
    used = {Path(p).resolve() for path in LAUNCHED for p in config_chain(str(path))[:-1]}
    assert [_id(b) for b in BASES if b.resolve() not in used] == []


# --- the overlay expansion ---------------------------------------------------------------------------


def _write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def test_config_chain_puts_bases_of_bases_first_resolved_from_each_file(tmp_path):
    root = _write(tmp_path / "a" / "root.yaml", "seed_everything: 1\n")
    mid = _write(tmp_path / "a" / "mid.yaml", "# overlay-of: root.yaml\n")
    top = _write(tmp_path / "b" / "top.yaml", "# header\n# overlay-of: ../a/mid.yaml\ntrainer: {}\n")
    assert config_chain(top) == [root, mid, top]
    assert config_chain(root) == [root]


def test_two_bases_sharing_a_base_load_it_once_before_both(tmp_path):
    # A stage base and a hardware base over one model base: loading the model base again between or after
    # them would reset the stage base's values to the model base's.
    model = _write(tmp_path / "_model.yaml", "seed_everything: 1\n")
    stage = _write(tmp_path / "_stage.yaml", "# overlay-of: _model.yaml\nseed_everything: 2\n")
    card = _write(tmp_path / "_card.yaml", "# overlay-of: _model.yaml\ntrainer: {devices: 1}\n")
    top = _write(tmp_path / "top.yaml", "# overlay-of: _stage.yaml\n# overlay-of: _card.yaml\nseed_everything: 4\n")
    assert config_chain(top) == [model, stage, card, top]
    assert expand_overlays(["fit", "--config", top]) == [
        "fit",
        *("--config", model, "--config", stage, "--config", card, "--config", top),
    ]


def test_expand_overlays_adds_each_base_once_and_keeps_other_args(tmp_path):
    base = _write(tmp_path / "base.yaml", "")
    one = _write(tmp_path / "one.yaml", "# overlay-of: base.yaml\nseed_everything: 1\n")
    two = _write(tmp_path / "two.yaml", "# overlay-of: one.yaml\nseed_everything: 2\n")
    args = ["fit", "--config", one, "--trainer.max_steps", "3", f"--config={two}", "-c", "inline: 1"]
    assert expand_overlays(args) == [
        "fit",
        *("--config", base, "--config", one),
        *("--trainer.max_steps", "3"),
        # base and one were loaded already: two's chain adds only two itself
        *("--config", two),
        *("-c", "inline: 1"),  # not a file: left to jsonargparse
    ]
    assert expand_overlays(["test", "--config"]) == ["test", "--config"]  # argparse reports the missing value


def test_an_overlay_of_comments_only_is_its_bases(tmp_path):
    # jsonargparse refuses a config file without a value; an overlay that only names its bases (the same run
    # under another file name) is replaced by them.
    base = _write(tmp_path / "base.yaml", "seed_everything: 3\n")
    same = _write(tmp_path / "same.yaml", "# overlay-of: base.yaml\n# the base's run, by another name\n")
    assert expand_overlays(["fit", "--config", same]) == ["fit", "--config", base]
    lone = _write(tmp_path / "lone.yaml", "# no base, nothing set\n")
    assert expand_overlays(["fit", "--config", lone]) == ["fit", "--config", lone]  # jsonargparse reports it


def test_missing_base_names_the_overlay_and_the_path(tmp_path):
    overlay = _write(tmp_path / "o.yaml", "# overlay-of: nope.yaml\n")
    with pytest.raises(ValueError, match=r"o\.yaml: '# overlay-of: nope\.yaml' names .*nope\.yaml, which does not"):
        expand_overlays(["fit", "--config", overlay])


def test_overlay_cycle_is_an_error(tmp_path):
    a = _write(tmp_path / "a.yaml", "# overlay-of: b.yaml\n")
    _write(tmp_path / "b.yaml", "# overlay-of: a.yaml\n")
    with pytest.raises(ValueError, match="cycle"):
        config_chain(a)


def test_cli_reports_a_missing_base_as_a_usage_error(tmp_path, capsys):
    overlay = _write(tmp_path / "o.yaml", "# overlay-of: nope.yaml\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", overlay, "--print_config"], run=True)
    assert exit_info.value.code != 0
    assert "nope.yaml" in capsys.readouterr().err


# --- drift guards ---------------------------------------------------------------------------------


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """jsonargparse's merge of two config files, on raw YAML: mappings merge, lists replace, ``key+`` appends."""
    out = dict(base)
    for key, value in over.items():
        if key.endswith("+") and isinstance(out.get(key[:-1]), list):
            out[key[:-1]] = [*out[key[:-1]], *value]
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _leaves(cfg: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in cfg.items():
        if isinstance(value, dict) and value:
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def _load(path: str | Path) -> dict[str, Any]:
    return yaml.safe_load(Path(path).read_text()) or {}


def test_merge_and_leaves_follow_jsonargparse():
    merged = _merge({"a": {"b": 1, "l": [1]}, "c": [1, 2]}, {"a": {"d": 2, "l+": [2]}, "c": [3]})
    assert merged == {"a": {"b": 1, "l": [1, 2], "d": 2}, "c": [3]}
    assert _leaves(merged) == {"a.b": 1, "a.l": [1, 2], "a.d": 2, "c": [3]}


OVERLAYS = [p for p in CONFIGS if len(config_chain(str(p))) > 1]


@pytest.mark.parametrize("path", OVERLAYS, ids=[_id(p) for p in OVERLAYS])
def test_overlay_says_only_what_differs_from_its_bases(path):
    # A value said again in an overlay drifts from its base (as the ten eval files once did).
    # class_path is exempt: every stage names its module, though a base may name the same one.
    inherited: dict[str, Any] = {}
    for base in config_chain(str(path))[:-1]:
        inherited = _merge(inherited, _load(base))
    base_leaves = _leaves(inherited)
    repeated = {
        k: v
        for k, v in _leaves(_load(path)).items()
        if k in base_leaves and base_leaves[k] == v and not k.endswith("class_path")
    }
    assert repeated == {}, f"{_id(path)} repeats its base's values: delete them from the overlay"


def test_eval_all_lists_exactly_the_single_benchmark_entries():
    # all.yaml has to list the benchmarks itself (a list replaces, it does not merge); keep it equal to the overlays.
    singles = [p for p in (ROOT / "configs" / "eval").glob("*.yaml") if p.name not in ("all.yaml", "_base.yaml")]
    expected = sorted((_load(p)["model"]["init_args"]["benchmarks"][0] for p in singles), key=repr)
    listed = sorted(_load(ROOT / "configs" / "eval" / "all.yaml")["model"]["init_args"]["benchmarks"], key=repr)
    assert len(singles) == 10 and listed == expected
