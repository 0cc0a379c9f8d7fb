"""FGCLIPScorer on a stand-in remote-code model this test writes to disk: the authors' preprocessing (336 x 336
resize, not crop; 248 tokens; long-text path), the cosine of the model's features, failures as NaN, and the
remote-code guard (explicit trust, pinned revision, FG-CLIP2 refused), plus its YAML through the CLI.

The stand-in's features are hand-computable: an image's is its mean (R, G, B) after preprocessing plus a
constant 1; a text's is the count of the words red, green, blue among its token ids plus a constant 1
(reversed to (blue, green, red) on the short-text path, so the path taken shows in the score).
"""

from __future__ import annotations

import importlib.util
import io
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from pebr_lit.clip.fgclip import FGCLIPScorer
from pebr_lit.clip.scorers import SimilarityScorer

ROOT = Path(__file__).resolve().parents[3]
COMMIT = "0123456789abcdef0123456789abcdef01234567"
VOCAB = {"<pad>": 0, "<unk>": 1, "<bos>": 2, "<eos>": 3, "red": 4, "green": 5, "blue": 6, "a": 7, "square": 8}

MODELING = '''
"""Stand-in for FG-CLIP's remote code (written by tests/contract/clip/test_fgclip.py)."""
import torch
from torch import nn
from transformers import PreTrainedConfig, PreTrainedModel


class StandInConfig(PreTrainedConfig):
    model_type = "fgclip_standin"

    def __init__(self, word_ids=(4, 5, 6), **kwargs):
        self.word_ids = list(word_ids)
        super().__init__(**kwargs)


class StandInFGCLIP(PreTrainedModel):
    config_class = StandInConfig

    def __init__(self, config):
        super().__init__(config)
        self.scale = nn.Parameter(torch.ones(1))
        self.calls = []
        self.post_init()

    def get_image_features(self, pixel_values):
        self.calls.append(("image", tuple(pixel_values.shape)))
        colour = pixel_values.mean(dim=(2, 3))
        return self.scale * torch.cat([colour, torch.ones_like(colour[:, :1])], dim=-1)

    def get_text_features(self, input_ids, walk_short_pos=True):
        self.calls.append(("text", tuple(input_ids.shape), walk_short_pos))
        counts = torch.stack([(input_ids == i).sum(-1) for i in self.config.word_ids], dim=-1).to(self.scale.dtype)
        if walk_short_pos:
            counts = counts.flip(-1)
        return self.scale * torch.cat([counts, torch.ones_like(counts[:, :1])], dim=-1)
'''


def build_standin(out: Path, auto_class: str = "AutoModelForCausalLM") -> Path:
    """A remote-code checkpoint: modeling file, config.json with auto_map, weights, tokenizer, image processor."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import CLIPImageProcessor, PreTrainedTokenizerFast

    out.mkdir(parents=True, exist_ok=True)
    (out / "modeling_standin.py").write_text(MODELING)
    spec = importlib.util.spec_from_file_location(f"standin_{out.name}", out / "modeling_standin.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.StandInFGCLIP(module.StandInConfig(word_ids=[VOCAB[w] for w in ("red", "green", "blue")])).save_pretrained(
        out
    )
    config = json.loads((out / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "modeling_standin.StandInConfig", auto_class: "modeling_standin.StandInFGCLIP"}
    (out / "config.json").write_text(json.dumps(config))

    backend = Tokenizer(models.WordLevel(VOCAB, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(
        single="<bos> $A <eos>", special_tokens=[("<bos>", 2), ("<eos>", 3)]
    )
    special = {"pad_token": "<pad>", "unk_token": "<unk>", "bos_token": "<bos>", "eos_token": "<eos>"}
    PreTrainedTokenizerFast(tokenizer_object=backend, model_max_length=77, **special).save_pretrained(out)
    # A centre-cropping processor with identity normalisation: pixel values are the RGB bytes / 255, and an image
    # that reached it unresized would lose its sides.
    CLIPImageProcessor(
        size={"shortest_edge": 336},
        crop_size={"height": 336, "width": 336},
        do_center_crop=True,
        image_mean=[0.0, 0.0, 0.0],
        image_std=[1.0, 1.0, 1.0],
    ).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_standin(tmp_path_factory.mktemp("fgclip_standin"))


@pytest.fixture(scope="module")
def scorer(standin: Path) -> FGCLIPScorer:
    return FGCLIPScorer(str(standin), trust_remote_code=True, batch_size=2)


def cosine(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def bands() -> Image.Image:
    """1008 x 336: red, green and blue thirds. Squashed to 336 x 336 it stays a third of each colour; centre-
    cropped to 336 x 336 it is the green third alone."""
    pixels = np.zeros((336, 1008, 3), np.uint8)
    for channel in range(3):
        pixels[:, 336 * channel : 336 * (channel + 1), channel] = 255
    return Image.fromarray(pixels)


def test_similarity_is_the_cosine_of_the_stand_in_features(scorer: FGCLIPScorer) -> None:
    images = [Image.new("RGB", (50, 80), "red"), Image.new("RGB", (300, 20), "blue"), Image.new("L", (7, 7), 255)]
    texts = ["red red blue", "green", "a square"]
    scorer.model.calls.clear()
    scores = scorer.similarity(images, texts)
    assert isinstance(scorer, SimilarityScorer)
    assert scores.shape == (3,) and scores.dtype == torch.float32 and scorer.last_failures == 0
    # red (1,0,0,1) . (2,0,1,1) = 3 over sqrt(2) sqrt(6): sqrt(3)/2; blue (0,0,1,1) . green (0,1,0,1) = 1 over
    # sqrt(2) sqrt(2): 1/2; white grey-scale -> RGB (1,1,1,1) . no colour word (0,0,0,1) = 1 over 2 * 1: 1/2.
    assert scores.tolist() == pytest.approx([math.sqrt(3) / 2, 0.5, 0.5], abs=1e-6)
    texts_seen = [c for c in scorer.model.calls if c[0] == "text"]
    # Two forward passes (batch_size 2), every text 248 tokens on the long-text path.
    assert texts_seen == [("text", (2, 248), False), ("text", (1, 248), False)]
    assert [c for c in scorer.model.calls if c[0] == "image"] == [
        ("image", (2, 3, 336, 336)),
        ("image", (1, 3, 336, 336)),
    ]
    assert next(scorer.model.parameters()).dtype == torch.float32


def test_the_image_is_resized_to_336_not_cropped(scorer: FGCLIPScorer) -> None:
    image = bands()
    # What the processor alone does to it: the centre crop keeps the green third only.
    cropped = scorer.image_processor.preprocess(image, return_tensors="pt")["pixel_values"][0].mean(dim=(1, 2))
    assert cropped.tolist() == pytest.approx([0.0, 1.0, 0.0], abs=1e-6)
    # The authors' squash first: PIL's bicubic resize to 336 x 336, colour means as the stand-in sees them.
    squashed = np.asarray(image.resize((336, 336), Image.Resampling.BICUBIC), dtype=np.float64).mean(axis=(0, 1)) / 255
    assert squashed == pytest.approx([1 / 3, 1 / 3, 1 / 3], abs=1e-2)
    expected = cosine([*squashed, 1.0], [0.0, 1.0, 0.0, 1.0])  # ~ sqrt(2/3) = 0.816; the crop would give 1
    assert scorer.similarity([image], ["green"]).item() == pytest.approx(expected, abs=1e-5)
    assert abs(expected - 1.0) > 0.15


def test_text_is_cut_at_248_tokens(scorer: FGCLIPScorer) -> None:
    # <bos> blue red x 245 <eos> = 248 tokens: the trailing blue is cut. Text (245,0,1,1), blue image (0,0,1,1).
    text = "blue " + "red " * 300 + "blue"
    score = scorer.similarity([Image.new("RGB", (40, 40), "blue")], [text]).item()
    assert score == pytest.approx(2 / (math.sqrt(2) * math.sqrt(245**2 + 2)), abs=1e-6)


def test_a_broken_image_is_nan_for_that_item_only(scorer: FGCLIPScorer) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(buffer, format="PNG")
    corrupt = Image.open(io.BytesIO(buffer.getvalue()[:60]))  # opens lazily, fails on decode
    red, blue = Image.new("RGB", (30, 30), "red"), Image.new("RGB", (30, 30), "blue")
    before = scorer.failures
    scores = scorer.similarity([red, corrupt, blue], ["red", "red", "green"])
    assert torch.isfinite(scores).tolist() == [True, False, True]
    assert [scores[0].item(), scores[2].item()] == pytest.approx([1.0, 0.5], abs=1e-6)  # (1,0,0,1).(1,0,0,1); 1/2
    assert scorer.last_failures == 1 and scorer.failures == before + 1
    assert scorer.last_errors[0].startswith("item 1: image:")


def test_walk_short_pos_and_dtype_reach_the_model(standin: Path) -> None:
    short = FGCLIPScorer(str(standin), trust_remote_code=True, walk_short_pos=True, dtype="bfloat16")
    assert next(short.model.parameters()).dtype == torch.bfloat16
    # The short path reverses the stand-in's text feature: "red" becomes (0,0,1,1), a red image (1,0,0,1): 1/2.
    assert short.similarity([Image.new("RGB", (30, 30), "red")], ["red"]).item() == pytest.approx(0.5, abs=1e-2)
    assert [c[2] for c in short.model.calls if c[0] == "text"] == [True]


def test_a_bare_cuda_device_is_each_process_current_gpu(scorer: FGCLIPScorer, monkeypatch: pytest.MonkeyPatch) -> None:
    # Resolution only (no GPU here): the model is moved when first used, to the GPU the rank has by then.
    moved: list[torch.device] = []
    monkeypatch.setattr(scorer, "device", torch.device("cuda"))
    monkeypatch.setattr(scorer, "_on", torch.device("cpu"))
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 3)
    monkeypatch.setattr(scorer.model, "to", lambda device: moved.append(device))
    assert scorer._placed() == torch.device("cuda", 3) and moved == [torch.device("cuda", 3)]
    assert scorer._placed() == torch.device("cuda", 3) and len(moved) == 1  # moved once


def test_an_auto_map_under_automodel_loads_too(tmp_path: Path) -> None:
    scorer = FGCLIPScorer(
        str(build_standin(tmp_path / "fgclip_standin_automodel", "AutoModel")), trust_remote_code=True
    )
    assert scorer.similarity([Image.new("RGB", (30, 30), "red")], ["red"]).item() == pytest.approx(1.0, abs=1e-6)


def test_remote_code_is_an_explicit_opt_in(standin: Path) -> None:
    with pytest.raises(
        ValueError, match=r"trust_remote_code=False: .*\(modeling_standin\.py\).*trust_remote_code: true"
    ):
        FGCLIPScorer(str(standin))


@pytest.mark.parametrize("revision", [None, "main", "v1.0", COMMIT[:12], COMMIT.upper()])
def test_a_hub_id_needs_a_pinned_commit(revision: str | None) -> None:
    # Refused before anything is fetched: this machine has no hub access, and the test needs none.
    with pytest.raises(ValueError, match=rf"^FGCLIPScorer\.revision={revision!r}: .*commit.*hf download"):
        FGCLIPScorer("qihoo360/fg-clip-large", revision=revision, trust_remote_code=True)
    with pytest.raises(FileNotFoundError, match="no such directory"):
        FGCLIPScorer("./models/fg-clip-large", revision=revision, trust_remote_code=True)


def test_a_pinned_hub_id_loads_from_the_hub_cache(standin: Path, tmp_path: Path) -> None:
    # The hub cache's layout for one commit (models--<owner>--<name>/snapshots/<commit>/), read with
    # local_files_only: the hub-id path end to end (config read as JSON, remote code, weights) with no network.
    shutil.copytree(standin, tmp_path / "hub" / "models--pebr-lit-test--fgclip-standin" / "snapshots" / COMMIT)
    scorer = FGCLIPScorer(
        "pebr-lit-test/fgclip-standin",
        revision=COMMIT,
        trust_remote_code=True,
        local_files_only=True,
        cache_dir=str(tmp_path / "hub"),
    )
    assert scorer.similarity([Image.new("RGB", (30, 30), "red")], ["red"]).item() == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(FileNotFoundError, match=rf"revision={COMMIT[::-1]!r}: .* not in the hub cache"):
        FGCLIPScorer(
            "pebr-lit-test/fgclip-standin",
            revision=COMMIT[::-1],
            trust_remote_code=True,
            local_files_only=True,
            cache_dir=str(tmp_path / "hub"),
        )


@pytest.mark.parametrize("name", ["qihoo360/fg-clip2-base", "qihoo360/FG-CLIP2-so400m", "fgclip2_large"])
def test_fgclip2_is_refused_by_name(name: str) -> None:
    with pytest.raises(ValueError, match=r"FG-CLIP2, a different model"):
        FGCLIPScorer(name, revision=COMMIT, trust_remote_code=True)


@pytest.mark.parametrize(
    "field",
    [{"model_type": "fgclip2"}, {"architectures": ["FG_CLIP2_Model"]}, {"auto_map": {"AutoModel": "m.Fgclip2Model"}}],
)
def test_fgclip2_is_refused_by_config(standin: Path, tmp_path: Path, field: dict) -> None:
    copy = shutil.copytree(standin, tmp_path / "fg-clip-2024-copy")  # a name that is not FG-CLIP2
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, **field}))
    with pytest.raises(ValueError, match=r"FG-CLIP2, a different model"):
        FGCLIPScorer(str(copy))  # refused before trust is even asked for


def test_a_checkpoint_without_remote_code_is_refused(standin: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(standin, tmp_path / "plain")
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({k: v for k, v in config.items() if k != "auto_map"}))
    with pytest.raises(ValueError, match=r"no auto_map entry .*HFClipScorer"):
        FGCLIPScorer(str(copy), trust_remote_code=True)
    with pytest.raises(FileNotFoundError, match="config.json does not exist"):
        FGCLIPScorer(str(tmp_path), trust_remote_code=True)


def test_the_scorer_parses_in_yaml_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from cli import main

    overlay = tmp_path / "fgclip.yaml"
    overlay.write_text(
        "model:\n  init_args:\n    clip_scorer:\n      class_path: pebr_lit.clip.fgclip.FGCLIPScorer\n"
        f"      init_args:\n        revision: {COMMIT}\n        trust_remote_code: true\n        device: cuda\n"
    )
    stage1 = str(ROOT / "configs" / "demo" / "stage1.yaml")
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", stage1, "--config", str(overlay), "--print_config"], run=True)
    assert exit_info.value.code == 0
    scorer = yaml.safe_load(capsys.readouterr().out)["model"]["init_args"]["clip_scorer"]
    assert scorer == {
        "class_path": "pebr_lit.clip.fgclip.FGCLIPScorer",
        "init_args": {
            "model_name_or_path": "qihoo360/fg-clip-large",
            "revision": COMMIT,
            "trust_remote_code": True,
            "local_files_only": False,
            "cache_dir": None,
            "image_size": 336,
            "max_text_tokens": 248,
            "walk_short_pos": False,
            "device": "cuda",
            "dtype": "float32",
            "batch_size": 32,
        },
    }
