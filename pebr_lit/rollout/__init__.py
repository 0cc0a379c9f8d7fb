"""Rollout engines behind one interface (``base``): HF generate (default) and sglang (optional, GPU); no scoring."""

from pebr_lit.rollout.base import EngineRollout, RolloutEngine, logprob_gap
from pebr_lit.rollout.hf import HFGenerate
from pebr_lit.rollout.sglang import SGLangEngine, SGLangOffline, SGLangServer

__all__ = [
    "EngineRollout",
    "HFGenerate",
    "RolloutEngine",
    "SGLangEngine",
    "SGLangOffline",
    "SGLangServer",
    "logprob_gap",
]
