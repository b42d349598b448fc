"""The fingerprint of the code that computes a run's numbers: what makes a record "of this code".

A run id holds the settings and the data (``bench.store.run_id``), not the code, so a record made
by an older trainer would otherwise count as done after the trainer changed. Each record carries
:func:`code` of the method's modules instead (``provenance.code``), and a sweep retrains any run
whose record names other code (docs/harness.md, "Runs know their code").

The fingerprint is a sha256 over the *syntax* of each module: its source parsed with :mod:`ast`,
docstrings removed, then written out node by node with every field whose value is not empty.
So comments, docstrings, blank lines, line breaks and quoting style do not change it, while any
change to what the code does (an operator, a constant, a call) does. It depends on no path, host
or time: a fresh clone of the same commit computes the same value. Dropping empty fields keeps it
the same across the Python versions whose parsers add fields that this code does not use (3.12's
``type_params``, for one).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
from collections.abc import Sequence

# The modules whose code decides a VS-Boost record's numbers (docs/harness.md says why each is in
# or out). Out: settings (paths), files (atomic writes), errors (messages), synthetic (the data
# fingerprint already covers the files it writes), __init__/__main__ (imports, the command line).
# Each method adds its own modules (vsboost.methods.base.Method.code_modules): of_method().
METHOD_MODULES = (
    "vsboost.config", "vsboost.runtime", "vsboost.data", "vsboost.sampler", "vsboost.models",
    "vsboost.losses", "vsboost.train", "vsboost.evaluate",
)


def code(modules: Sequence[str] = METHOD_MODULES) -> str:
    """sha256 (hex) of the syntax of ``modules``, in the order given, each named."""
    return _code(tuple(modules))


def of_method(name: str) -> str:
    """:func:`code` of the shared modules and those of the method registered as ``name``."""
    from vsboost import methods  # imports torch; the fingerprint of a module list does not

    return code(METHOD_MODULES + methods.get(name).code_modules())


@functools.cache
def _code(modules: tuple[str, ...]) -> str:
    digest = hashlib.sha256()
    for name in modules:
        digest.update(f"{name}\n{syntax(_source(name))}\n".encode())
    return digest.hexdigest()


def syntax(source: str) -> str:
    """The canonical text of ``source``'s syntax tree without docstrings (what :func:`code`
    hashes)."""
    return _canonical(_strip_docstrings(ast.parse(source)))


def _source(module: str) -> str:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ValueError(f"module {module!r}: expected an importable source module, found none")
    with open(spec.origin, encoding="utf-8") as f:
        return f.read()


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


def _canonical(node) -> str:
    if isinstance(node, ast.AST):
        fields = [f"{name}={_canonical(value)}" for name, value in ast.iter_fields(node)
                  if value not in (None, [])]
        return f"{type(node).__name__}({','.join(fields)})"
    if isinstance(node, list):
        return f"[{','.join(_canonical(v) for v in node)}]"
    return repr(node)
