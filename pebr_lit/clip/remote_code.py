"""FG-CLIP's remote-code guard: what a checkpoint's ``auto_map`` would run, explicit trust, a pinned revision.

``check_remote_code`` runs before ``from_pretrained`` ever sees ``trust_remote_code=True``: it reads
``config.json`` as plain JSON (no code runs), names the Python files its ``auto_map`` points at, refuses
unless the caller opted in, and refuses a hub id whose revision is not a commit hash, because a branch
such as ``main`` can change the code that runs between two loads. A local directory is taken as the
user's reviewed copy and needs no revision. FG-CLIP2 is refused by name and by config: it is a different
model (architecture, tokenizer, text API), not a newer FG-CLIP.

Left out on purpose: loading weights (the scorer does, through transformers), and downloading anything
except ``config.json`` of a hub id whose revision is already pinned.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

#: A git commit id as the hub reports it: 40 lowercase hex digits; branches and tags are refused.
COMMIT = re.compile(r"[0-9a-f]{40}")
#: FG-CLIP2 in a repository name, model_type, architecture or auto_map entry ("fg-clip2-base", "fgclip2",
#: "FG_CLIP2_Model", "Fgclip2Model"); a trailing digit ("fg-clip-2024") is not a version 2.
FGCLIP2 = re.compile(r"fg[-_ ]?clip[-_ ]?v?2(?![0-9])", re.IGNORECASE)
#: The auto classes FG-CLIP's ``auto_map`` can target, in the order tried: the authors load through
#: AutoModelForCausalLM (FG-CLIP registers itself there); AutoModel is the generic remote-code entry.
AUTO_CLASSES = ("AutoModelForCausalLM", "AutoModel")
AUTHORS_MODEL = "qihoo360/fg-clip-large"


def is_local(path: str) -> bool:
    """True for an existing directory; raises for something that looks like a path but is not one."""
    if Path(path).expanduser().is_dir():
        return True
    # A hub id is "owner/name"; more slashes, a leading ./ or an existing parent folder mean a path.
    if path.startswith((".", "/", "~")) or path.count("/") > 1 or ("/" in path and Path(path).parent.is_dir()):
        raise FileNotFoundError(
            f"FGCLIPScorer.model_name_or_path={path!r}: no such directory. Give a directory downloaded with "
            f"`hf download {AUTHORS_MODEL} --revision <commit> --local-dir DIR`, or the hub id {AUTHORS_MODEL!r}."
        )
    return False


def refuse_fgclip2(source: str, where: str) -> None:
    """Raise if ``where`` (a name or a config value) says FG-CLIP2."""
    if FGCLIP2.search(where):
        raise ValueError(
            f"FGCLIPScorer.model_name_or_path={source!r}: {where!r} is FG-CLIP2, a different model from FG-CLIP "
            "(its own architecture, tokenizer and text API: walk_type instead of walk_short_pos), not the model "
            f"the authors score with. Use {AUTHORS_MODEL} (or a local copy of it); FG-CLIP2 would need a scorer "
            "of its own."
        )


def read_config(
    source: str, local: bool, revision: str | None, local_files_only: bool, cache_dir: str | None = None
) -> dict[str, Any]:
    """``config.json`` as a dict, read as JSON: nothing in the checkpoint is executed."""
    if local:
        path = Path(source).expanduser() / "config.json"
        if not path.is_file():
            raise FileNotFoundError(
                f"FGCLIPScorer.model_name_or_path={source!r}: {path} does not exist. Give the directory that "
                f"`hf download {AUTHORS_MODEL} --local-dir DIR` fills (config.json, weights, tokenizer, "
                "preprocessor_config.json and the model's .py files)."
            )
    else:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import LocalEntryNotFoundError

        try:
            path = Path(
                hf_hub_download(
                    source, "config.json", revision=revision, local_files_only=local_files_only, cache_dir=cache_dir
                )
            )
        except LocalEntryNotFoundError as exc:  # offline, or local_files_only, and this commit was never downloaded
            raise FileNotFoundError(
                f"FGCLIPScorer.revision={revision!r}: commit {revision} of {source} is not in the hub cache "
                f"({cache_dir or 'HF_HUB_CACHE'}) and the hub cannot be asked. Run `hf download {source} --revision "
                f"{revision}` where the hub is reachable, or give a downloaded directory as model_name_or_path."
            ) from exc
    return json.loads(path.read_text())


def auto_class_name(source: str, config: dict[str, Any]) -> str:
    """The first of ``AUTO_CLASSES`` that the config's ``auto_map`` targets; FG-CLIP2 configs refused."""
    auto_map = config.get("auto_map") or {}
    for value in [config.get("model_type"), *(config.get("architectures") or []), *auto_map.values()]:
        refuse_fgclip2(source, str(value))
    for name in AUTO_CLASSES:
        if name in auto_map:
            return name
    raise ValueError(
        f"FGCLIPScorer.model_name_or_path={source!r}: config.json has no auto_map entry for "
        f"{' or '.join(AUTO_CLASSES)}, so it is not FG-CLIP's remote-code checkpoint (a transformers CLIP "
        f"checkpoint loads with pebr_lit.clip.scorers.HFClipScorer). Use a copy of {AUTHORS_MODEL}."
    )


def code_files(config: dict[str, Any]) -> list[str]:
    """The ``.py`` files the config's ``auto_map`` names (``"modeling_x.Cls"`` -> ``modeling_x.py``)."""
    refs = [
        ref
        for value in (config.get("auto_map") or {}).values()
        for ref in (value if isinstance(value, list) else [value])
    ]
    # "repo--module.Class" points at another repository's code; the module is what runs either way.
    return sorted({ref.split("--")[-1].rsplit(".", 1)[0] + ".py" for ref in refs if isinstance(ref, str)})


def check_remote_code(
    source: str, revision: str | None, trust_remote_code: bool, local_files_only: bool, cache_dir: str | None = None
) -> tuple[str, dict[str, Any]]:
    """Refuse unless loading ``source``'s remote code was opted into and pinned; returns (auto class, config)."""
    refuse_fgclip2(source, Path(source).name)
    local = is_local(source)
    # A local config is read first: an FG-CLIP2 or non-remote-code directory is refused before trust is asked for.
    config = read_config(source, local, revision, local_files_only) if local else None
    if config is not None:
        auto_class_name(source, config)
    if not trust_remote_code:
        files = ", ".join(code_files(config)) if config else "the .py files its config.json lists under auto_map"
        raise ValueError(
            f"FGCLIPScorer.trust_remote_code=False: {source} is a remote-code checkpoint; loading it imports and "
            f"runs Python that ships with the checkpoint ({files}) in this process, with your permissions. "
            "Set trust_remote_code: true once you have read that code (and, for a hub id, pinned the revision "
            "you read)."
        )
    if not local and (revision is None or not COMMIT.fullmatch(revision)):
        name = source.rsplit("/", 1)[-1]
        raise ValueError(
            f"FGCLIPScorer.revision={revision!r}: {source} is a hub id and trust_remote_code runs the code it "
            "holds at load time, so the revision must be a commit hash, not a branch or tag that can move. "
            f'Set revision to the 40-character commit you reviewed (`python -c "from huggingface_hub import '
            f"model_info; print(model_info('{source}').sha)\"` prints the current one), or download that commit "
            f"once with `hf download {source} --revision <commit> --local-dir models/{name}` (older clients: "
            "`huggingface-cli download`) and set model_name_or_path to the directory."
        )
    if config is None:  # a hub id: only now, with trust given and the revision pinned, is its config fetched
        config = read_config(source, local, revision, local_files_only, cache_dir)
    return auto_class_name(source, config), config
