"""Small, safe expressions of sweep specs: derived values and constraints.

Grammar (a subset of Python, parsed with :mod:`ast`, never ``eval``'d): numbers, strings, names with
dots (``array.rows``, ``buffers.weight.size_kib``, ``area_mm2``), ``+ - * / // % **``, comparisons
(chains allowed), ``and``/``or``/``not``, ``x if c else y`` and the functions ``min max abs log2 sqrt``.
Every operation is element-wise on numpy arrays, so one evaluation covers a whole chunk of points.

>>> import numpy as np
>>> e = Expression("array.rows * array.cols <= 1024 and area_mm2 < 4")
>>> sorted(e.names)
['area_mm2', 'array.cols', 'array.rows']
>>> e.evaluate({"array.rows": np.array([16, 64]), "array.cols": np.array([16, 64]), "area_mm2": np.array([1, 1])})
array([ True, False])
"""

from __future__ import annotations

import ast
import operator

import numpy as np

__all__ = ["Expression", "ExpressionError"]

_BIN = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_CMP = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
        ast.Eq: operator.eq, ast.NotEq: operator.ne}
_FUNCS = {"min": np.minimum, "max": np.maximum, "abs": np.abs, "log2": np.log2, "sqrt": np.sqrt}


class ExpressionError(ValueError):
    """An expression that does not parse or uses something outside the grammar (one line)."""


def _dotted(node) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


class Expression:
    """A parsed expression; :attr:`names` are the dotted names it reads."""

    def __init__(self, text: str):
        if not isinstance(text, str) or not text.strip():
            raise ExpressionError(f"expected a non-empty expression string, not {text!r}")
        try:
            self.tree = ast.parse(text.strip(), mode="eval").body
        except SyntaxError as exc:
            raise ExpressionError(f"{text!r} does not parse: {exc.msg}") from None
        self.text = text.strip()
        self.names: set[str] = set()
        self._check(self.tree)

    def _check(self, node) -> None:
        name = _dotted(node)
        if name is not None:
            self.names.add(name)
            return
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str)) \
                and not isinstance(node.value, bool):
            return
        if isinstance(node, ast.BinOp) and type(node.op) in _BIN:
            children = (node.left, node.right)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd, ast.Not)):
            children = (node.operand,)
        elif isinstance(node, ast.Compare) and all(type(op) in _CMP for op in node.ops):
            children = (node.left, *node.comparators)
        elif isinstance(node, ast.BoolOp):
            children = tuple(node.values)
        elif isinstance(node, ast.IfExp):
            children = (node.test, node.body, node.orelse)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS
              and not node.keywords and node.args):
            children = tuple(node.args)
        else:
            raise ExpressionError(f"{self.text!r}: {ast.unparse(node)!r} is not allowed (numbers, dotted names, "
                                  f"arithmetic, comparisons, and/or/not, if-else, {'/'.join(_FUNCS)})")
        for child in children:
            self._check(child)

    def evaluate(self, values: dict):
        """Evaluate with ``values`` (dotted name -> scalar or numpy array); element-wise over arrays."""
        return self._eval(self.tree, values)

    def _eval(self, node, values: dict):
        name = _dotted(node)
        if name is not None:
            if name not in values:
                raise ExpressionError(f"{self.text!r}: unknown name {name!r}")
            return values[name]
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.BinOp):
            return _BIN[type(node.op)](self._eval(node.left, values), self._eval(node.right, values))
        if isinstance(node, ast.UnaryOp):
            x = self._eval(node.operand, values)
            return np.logical_not(x) if isinstance(node.op, ast.Not) else (-x if isinstance(node.op, ast.USub) else x)
        if isinstance(node, ast.Compare):
            left, out = self._eval(node.left, values), True
            for op, comp in zip(node.ops, node.comparators, strict=True):
                right = self._eval(comp, values)
                out = np.logical_and(out, _CMP[type(op)](np.asarray(left), np.asarray(right)))
                left = right
            return out
        if isinstance(node, ast.BoolOp):
            parts = [np.asarray(self._eval(v, values), dtype=bool) for v in node.values]
            fn = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
            out = parts[0]
            for p in parts[1:]:
                out = fn(out, p)
            return out
        if isinstance(node, ast.IfExp):
            return np.where(np.asarray(self._eval(node.test, values), dtype=bool), self._eval(node.body, values),
                            self._eval(node.orelse, values))
        fn = _FUNCS[node.func.id]
        args = [self._eval(a, values) for a in node.args]
        if fn in (np.minimum, np.maximum):
            out = args[0]
            for a in args[1:]:
                out = fn(out, a)
            return out
        return fn(*args)
