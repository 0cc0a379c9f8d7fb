"""Benchmark adapters: one file per benchmark, each reading its released files and scoring by its published rules.

Chosen by ``class_path`` in ``model.init_args.benchmarks`` of an evaluation config (``configs/eval/``).
"""

from pebr_lit.eval.benchmarks.ai2d import AI2D
from pebr_lit.eval.benchmarks.base import Benchmark, BenchmarkItem
from pebr_lit.eval.benchmarks.dynamath import DynaMath
from pebr_lit.eval.benchmarks.hallusionbench import HallusionBench
from pebr_lit.eval.benchmarks.logicvista import LogicVista
from pebr_lit.eval.benchmarks.mathverse import MathVerse
from pebr_lit.eval.benchmarks.mathvision import MathVision
from pebr_lit.eval.benchmarks.mathvista import MathVista
from pebr_lit.eval.benchmarks.mmmu import MMMU
from pebr_lit.eval.benchmarks.mmstar import MMStar
from pebr_lit.eval.benchmarks.wemath import WeMath

__all__ = [
    "AI2D",
    "Benchmark",
    "BenchmarkItem",
    "DynaMath",
    "HallusionBench",
    "LogicVista",
    "MathVerse",
    "MathVision",
    "MathVista",
    "MMMU",
    "MMStar",
    "WeMath",
]
