"""The import graph of the product packages, read from the source (ast): arrows only point
down (tools -> pipeline | training -> filters -> commandline), a job never imports another
job, there are no cycles, every import inside a function says why it is not at the top of its
file, and no two modules share a file name unless they play one role in parallel packages.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("commandline", "filters", "pipeline", "training", "tools")
# What each top-level package may import from the project besides itself: commandline (the
# flags, the progress line, the extras check) is the bottom and imports nothing of the project.
MAY_IMPORT = {
    "commandline": set(),
    "filters": {"commandline"},
    "pipeline": {"filters", "commandline"},
    "training": {"filters", "commandline"},
    "tools": {"filters", "pipeline", "training", "commandline"},
}
# pipeline/'s rooms: each job's package may use the shared base (the modules at pipeline/'s
# root), the fetcher and the archive reader, never another job; the base uses none of them.
PIPELINE_ROOMS = {
    "crawl": {"fetch", "warc"},
    "download": {"fetch", "warc"},
    "ingest": set(),
    "filter": {"report"},  # --stats draws the run's report
    "purge": set(),
    "report": set(),
    "fetch": set(),
    "warc": set(),
}


# Frameworks a package never imports: rules are plain Python, the trainer never needs Beam.
FORBIDDEN = {
    "commandline": {"apache_beam", "tensorflow", "keras", "keras_hub"},
    "filters": {"apache_beam", "tensorflow", "keras", "keras_hub"},
    "training": {"apache_beam"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {
    module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")
}


def imported(node: ast.AST, importer: str) -> Iterator[str]:
    """The project modules an import statement names (a submodule when it names one)."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:  # relative: from the importer's package
            package = importer.split(".")[: -node.level if importer in MODULES else None]
            base = ".".join(package + ([base] if base else []))
        for alias in node.names:
            yield f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base


def project_imports(name: str) -> Iterator[tuple[str, ast.AST]]:
    tree = ast.parse(MODULES[name].read_text())
    for node in ast.walk(tree):
        for target in imported(node, name):
            while target and target not in MODULES:
                target = target.rpartition(".")[0]  # pipeline.stats.IN -> pipeline.stats
            if target and target != name:
                yield target, node


GRAPH = {name: {target for target, _ in project_imports(name)} for name in MODULES}


def test_the_walker_sees_every_package_and_real_arrows():
    assert {name.split(".")[0] for name in MODULES} == set(PACKAGES)
    assert "filters.text" in GRAPH["pipeline.filter.measure"]
    assert "pipeline.warc.reader" in GRAPH["pipeline.crawl.job"]


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_only_point_down(package):
    upward = sorted(
        f"{name} -> {target}"
        for name, targets in GRAPH.items()
        if name.split(".")[0] == package
        for target in targets
        if target.split(".")[0] not in MAY_IMPORT[package] | {package}
    )
    assert upward == []


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_rules_import_no_framework_and_the_trainer_no_beam(package):
    found = sorted(
        f"{name} imports {target}"
        for name in MODULES
        if name.split(".")[0] == package
        for node in ast.walk(ast.parse(MODULES[name].read_text()))
        for target in imported(node, name)
        if target.split(".")[0] in FORBIDDEN[package]
    )
    assert found == []


def room(name: str) -> str | None:
    """pipeline.crawl.harvest -> 'crawl'; a module of the shared base -> None."""
    parts = name.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in PIPELINE_ROOMS) else None


def test_a_job_uses_the_shared_base_and_the_fetcher_never_another_job():
    crossing = sorted(
        f"{name} -> {target}"
        for name, targets in GRAPH.items()
        if name.startswith("pipeline.")
        for target in targets
        if target.startswith("pipeline.")
        and room(target) not in {None, room(name)}
        and (room(name) is None or room(target) not in PIPELINE_ROOMS[room(name)])
    )
    assert crossing == []


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]


def test_no_import_cycles():
    assert cycles(GRAPH) == []


def test_every_import_inside_a_function_says_why():
    unexplained = []
    for path in MODULES.values():
        lines = path.read_text().splitlines()
        for function in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    if "noqa: PLC0415" not in lines[node.lineno - 1]:
                        unexplained.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert unexplained == []


# Modules that may share a file name: the same role in parallel packages. Each job's package
# under pipeline/ has its command line, its pipeline, its settings and its formats; each
# command of training/cli/ is named after the module it runs; filters/ and training/ each
# have a config loaded from YAML (their configs/ folders).
PARALLEL_NAMES = {"__init__", "__main__"}


def parallel_role(paths: list[Path]) -> bool:
    """Whether modules of one file name play one role in parallel packages."""
    parts = [path.relative_to(ROOT).parts for path in paths]
    name = parts[0][-1]
    if all(len(p) == 3 and p[0] == "pipeline" and p[1] in PIPELINE_ROOMS for p in parts):
        return name in {"cli.py", "job.py", "settings.py", "formats.py"}
    if name == "config.py":
        return sorted(p[:-1] for p in parts) == [("filters",), ("training",)]
    commands = [p for p in parts if p[:2] == ("training", "cli")]
    return len(commands) == 1 and sorted(parts) == sorted([("training", name), commands[0]])


def shared_names() -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for path in MODULES.values():
        if path.stem not in PARALLEL_NAMES:
            found.setdefault(path.name, []).append(path)
    return {name: paths for name, paths in found.items() if len(paths) > 1}


def test_the_parallel_role_check_tells_roles_from_clashes():
    assert parallel_role([ROOT / "pipeline/crawl/cli.py", ROOT / "pipeline/filter/cli.py"])
    assert parallel_role([ROOT / "training/train.py", ROOT / "training/cli/train.py"])
    assert not parallel_role([ROOT / "filters/progress.py", ROOT / "pipeline/progress.py"])
    assert not parallel_role([ROOT / "filters/score.py", ROOT / "pipeline/filter/score.py"])


def test_no_two_modules_share_a_file_name_but_parallel_roles():
    clashes = sorted(
        " ".join(str(path.relative_to(ROOT)) for path in sorted(paths))
        for paths in shared_names().values()
        if not parallel_role(paths)
    )
    assert clashes == []
