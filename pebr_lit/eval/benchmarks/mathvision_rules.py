"""MathVision's VLMEvalKit answer rule (``mathv.py`` ``is_equal``), reimplemented without ``eval`` on model text.

VLMEvalKit (``open-compass/VLMEvalKit`` ``vlmeval/dataset/utils/mathv.py``, read at commit
e8e78f05f3080fe28154f2130321f17951c3be94): multiple choice -> ``can_infer`` (exact: ``eval.vlmevalkit_rules``);
free form -> ``is_equal(answer, truth)``: both lower-cased and stripped, then (1) the same text, or (2) both
read as Python arithmetic ("1/2", "2**3", "2^3" being XOR there, as in Python) within 1e-6, or (3) both
parsed by ``latex2sympy2_extended.latex2sympy`` and the printed SymPy forms read as Python arithmetic within
1e-6, or their SymPy difference below 1e-6. VLMEvalKit calls Python's ``eval``; ``arithmetic`` here evaluates
only number literals and operators, which is what ``eval`` can succeed on in that module (it imports no math
names), so the verdicts agree while model text is never executed (builtin calls such as "abs(-2)", which
``eval`` would read, are not read here).

Left out on purpose: MATH-V's own rule (``mathvision_official``, which reuses ``arithmetic`` with math's
names); VLMEvalKit's 30-second timeout (texts over ``MAX_LATEX_CHARS`` skip step 3 instead; exponents over
``MAX_EXPONENT`` count as unreadable).
"""

from __future__ import annotations

import ast
import operator
from typing import Any

MAX_LATEX_CHARS = 1000
MAX_EXPONENT = 10_000
_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.BitXor: operator.xor,
    ast.BitAnd: operator.and_,
    ast.BitOr: operator.or_,
    ast.LShift: operator.lshift,
    ast.RShift: operator.rshift,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Invert: operator.invert}


class Unreadable(ValueError):
    """Text that ``arithmetic`` does not evaluate (where Python's ``eval`` would fail or do more than arithmetic)."""


def _value(node: ast.AST, names: dict[str, Any]) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float | complex):
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_value(node.operand, names))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _value(node.left, names), _value(node.right, names)
        if isinstance(node.op, ast.Pow | ast.LShift) and abs(right) > MAX_EXPONENT:
            raise Unreadable("exponent too large")
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.Name) and node.id in names and not callable(names[node.id]):
        return names[node.id]
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and callable(names.get(node.func.id))
        and not node.keywords
    ):
        args = [_value(a, names) for a in node.args]
        if any(isinstance(a, int | float) and abs(a) > MAX_EXPONENT for a in args[1:] if node.func.id == "pow") or (
            node.func.id == "factorial" and any(abs(a) > MAX_EXPONENT for a in args)
        ):
            raise Unreadable("argument too large")
        return names[node.func.id](*args)
    raise Unreadable(type(node).__name__)


def arithmetic(text: str, names: dict[str, Any] | None = None) -> Any:
    """The value Python's ``eval`` gives ``text`` when it is number literals and operators (and, with ``names``,
    those constants and calls of those functions); else ``Unreadable``."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError):
        raise Unreadable("not Python arithmetic") from None
    try:
        return _value(tree.body, names or {})
    except (ArithmeticError, TypeError, ValueError) as e:  # 1/0, "1 ^ 0.5", ...
        raise Unreadable(str(e)) from None


def _close(a: str, b: str) -> bool:
    try:
        return bool(abs(arithmetic(a) - arithmetic(b)) < 1e-6)
    except (Unreadable, TypeError, ArithmeticError):
        return False


def _latex_close(truth: str, answer: str) -> bool:
    if len(truth) > MAX_LATEX_CHARS or len(answer) > MAX_LATEX_CHARS:
        return False
    from latex2sympy2_extended import latex2sympy  # math-verify's dependency; slow to import

    try:
        a, b = latex2sympy(truth), latex2sympy(answer)
    except Exception:  # noqa: BLE001 - any parse failure means "not equal", as in VLMEvalKit
        return False
    if _close(str(a), str(b)):
        return True
    try:  # VLMEvalKit reaches this only when both printed forms read as arithmetic
        arithmetic(str(a)), arithmetic(str(b))
        return bool(abs(a - b) < 1e-6)
    except Exception:  # noqa: BLE001
        return False


def vlmevalkit_equal(answer: str, truth: str) -> bool:
    """``mathv.py``'s ``is_equal(answer, truth)``: same text, same arithmetic value, or same LaTeX value."""
    answer, truth = answer.lower().strip(), truth.lower().strip()
    return answer == truth or _close(truth, answer) or _latex_close(truth, answer)
