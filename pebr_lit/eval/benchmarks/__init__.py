"""Benchmark adapters, one file each: read the released files, score by the published rules; no generation."""

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
