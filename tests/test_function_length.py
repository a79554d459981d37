"""Functions a reader follows in one screen: none in the product packages runs over 80 lines.

The developers' guide asks for functions under ~60 lines; 80 leaves room for a long flag list
or table while catching a function that has grown several jobs. bench/ and tests/ are exempt
(a benchmark or a test reads top to bottom).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("commandline", "filters", "pipeline", "training", "tools")
MAX_LINES = 80


def long_functions(source: str, limit: int = MAX_LINES) -> list[tuple[str, int, int]]:
    """(name, first line, length) of every function or method longer than ``limit`` lines,
    decorators and docstring included, nested functions counted in their parent too."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            length = node.end_lineno - start + 1
            if length > limit:
                found.append((node.name, start, length))
    return found


def test_the_length_check_finds_a_long_function_and_spares_a_short_one():
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_LINES))
    source = f"def short():\n    return 1\n\n\ndef long():\n{body}"
    assert long_functions(source) == [("long", 5, MAX_LINES + 1)]


def test_no_function_in_the_product_packages_runs_over_80_lines():
    too_long = [
        f"{path.relative_to(ROOT)}:{line} {name} ({length} lines)"
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        for name, line, length in long_functions(path.read_text(encoding="utf-8"))
    ]
    assert too_long == [], "split these into functions a reader follows:\n" + "\n".join(too_long)
