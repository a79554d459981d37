"""Every command speaks one dialect: ``run(argv=None)`` does the work and returns what it did,
``main(argv=None)`` is the console script and returns None, so a success exits 0.

Read from the source (ast), so the check costs no TensorFlow or Beam import.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


def functions(module: str) -> dict[str, ast.FunctionDef]:
    path = ROOT / (module.replace(".", "/") + ".py")
    tree = ast.parse(path.read_text())
    return {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}


def takes_only_optional_argv(function: ast.FunctionDef) -> bool:
    arguments = function.args
    return [a.arg for a in arguments.args] == ["argv"] and len(arguments.defaults) == 1


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_every_console_script_is_a_main_that_returns_none(script):
    module, _, name = SCRIPTS[script].partition(":")
    assert name == "main"
    main = functions(module)["main"]
    assert takes_only_optional_argv(main)
    assert isinstance(main.returns, ast.Constant) and main.returns.value is None


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_every_console_script_has_a_run_that_returns_its_result(script):
    module = SCRIPTS[script].partition(":")[0]
    run = functions(module)["run"]
    assert takes_only_optional_argv(run)
    assert run.returns is not None and not (
        isinstance(run.returns, ast.Constant) and run.returns.value is None
    )
