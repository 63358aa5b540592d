"""The import graph of neuroemu: no cycles, and no arrow against the layer order of
docs/architecture.md.

Every import in every module counts, those inside functions, methods and classes included;
imports under ``if TYPE_CHECKING:`` never run and are left out. ``import a.b.c`` is an arrow
to ``a.b.c`` (not to the packages ``a`` and ``a.b`` it also loads); ``from X import Y`` is an
arrow to ``X.Y`` when that is a module of the package, else to ``X``.
"""

from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "neuroemu"
DOC = ROOT / "docs" / "architecture.md"
MARKER = "The layer order, bottom up (tests/test_architecture.py reads this block):"
TOP = "__init__"  # the name of the package itself in the layer list

Layers = list[list[str]]


@dataclass(frozen=True)
class Import:
    """One import statement's arrow from module ``source`` to module ``target``."""

    source: str
    target: str
    path: Path
    line: int

    def where(self) -> str:
        return f"{self.path}:{self.line}"


# The layer list


def read_layers(text: str) -> Layers:
    """The layers in the fenced block after ``MARKER``, bottom up: one line per layer, names
    separated by commas."""
    lines = text.splitlines()
    start = lines.index(MARKER) + 1
    while not lines[start].strip():
        start += 1
    assert lines[start].startswith("```"), f"no fenced block after {MARKER!r}"
    end = lines.index("```", start + 1)
    rows = [line.split(",") for line in lines[start + 1 : end] if line.strip()]
    return [[name.strip() for name in row if name.strip()] for row in rows]


def qualified(name: str, package: str) -> str:
    """``chip``, ``chip/base.py`` or ``chip.base`` under ``package`` as a dotted name."""
    if name == TOP:
        return package
    return package + "." + name.removesuffix(".py").replace("/", ".")


def layer_of(module: str, layers: Layers, package: str) -> int | None:
    """The index of the layer whose longest name contains ``module``, or None."""
    best: tuple[int, int] | None = None  # (length of the name, layer index)
    for index, names in enumerate(layers):
        for name in names:
            full = qualified(name, package)
            inside = module == full or (name != TOP and module.startswith(full + "."))
            if inside and (best is None or len(full) > best[0]):
                best = (len(full), index)
    return None if best is None else best[1]


# The import graph


def module_files(package_dir: Path) -> dict[str, Path]:
    """Every module of the package by dotted name: ``pkg/a/__init__.py`` is ``pkg.a``."""
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def is_type_checking(test: ast.expr) -> bool:
    """``TYPE_CHECKING`` or ``typing.TYPE_CHECKING``."""
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


class ImportFinder(ast.NodeVisitor):
    """Collects ``(line, module, name)`` for every import that runs, at any depth: ``name`` is
    the imported name of ``from module import name`` and None for ``import module``."""

    def __init__(self, module: str, is_package: bool) -> None:
        self.package = module if is_package else module.rpartition(".")[0]
        self.found: list[tuple[int, str, str | None]] = []

    def visit_If(self, node: ast.If) -> None:
        if is_type_checking(node.test):
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.found += [(node.lineno, alias.name, None) for alias in node.names]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = self.absolute(node.module or "", node.level)
        self.found += [(node.lineno, module, alias.name) for alias in node.names]

    def absolute(self, module: str, level: int) -> str:
        """``module`` of ``from .module import`` (``level`` dots) as an absolute name."""
        if level == 0:
            return module
        parts = self.package.split(".")
        base = parts[: len(parts) - (level - 1)]
        return ".".join([*base, module] if module else base)


def resolve(module: str, name: str | None, modules: dict[str, Path]) -> str | None:
    """The module an import points to: ``module.name`` if that is a module, else the longest
    module containing ``module``; None outside the package."""
    if name is not None and f"{module}.{name}" in modules:
        return f"{module}.{name}"
    while module and module not in modules:
        module = module.rpartition(".")[0]
    return module or None


def imports_of(package_dir: Path) -> list[Import]:
    """Every arrow from a module of the package to a module of the package, once per line."""
    modules = module_files(package_dir)
    arrows = []
    for source, path in modules.items():
        finder = ImportFinder(source, path.name == "__init__.py")
        finder.visit(ast.parse(path.read_text(), filename=str(path)))
        shown = path.relative_to(package_dir.parent)
        for line, module, name in finder.found:
            target = resolve(module, name, modules)
            if target is not None:
                arrows.append(Import(source, target, shown, line))
    return list(dict.fromkeys(arrows))


# The checks; each returns one line per problem


def unplaced(package_dir: Path, layers: Layers) -> list[str]:
    """Modules that no layer contains."""
    package = package_dir.name
    return [
        f"{path.relative_to(package_dir.parent)}: {module} is in no layer"
        for module, path in module_files(package_dir).items()
        if layer_of(module, layers, package) is None
    ]


def upward(arrows: list[Import], layers: Layers, package: str) -> list[str]:
    """Imports that point to a higher layer than their own."""
    problems = []
    for arrow in arrows:
        source = layer_of(arrow.source, layers, package)
        target = layer_of(arrow.target, layers, package)
        if source is not None and target is not None and target > source:
            problems.append(
                f"{arrow.where()}: {arrow.source} ({', '.join(layers[source])}) imports "
                f"{arrow.target} ({', '.join(layers[target])}), a higher layer"
            )
    return problems


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """The modules ``start`` reaches through one or more arrows."""
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo += graph[module]
    return seen


def cycles(arrows: list[Import]) -> list[str]:
    """Each group of modules that import each other (a strongly connected component of more
    than one module, or a module importing itself), with every import inside the group."""
    graph: dict[str, set[str]] = {}
    for arrow in arrows:
        graph.setdefault(arrow.source, set()).add(arrow.target)
        graph.setdefault(arrow.target, set())
    reach = {module: reachable(graph, module) for module in graph}
    groups: list[list[str]] = []
    for module in sorted(graph):
        group = sorted(other for other in reach[module] if module in reach[other])
        if group and group not in groups:
            groups.append(group)
    problems = []
    for group in groups:
        inside = [a for a in arrows if a.source in group and a.target in group]
        edges = "".join(f"\n    {a.where()}: {a.source} -> {a.target}" for a in inside)
        problems.append(f"cycle among {', '.join(group)}:{edges}")
    return problems


def report(title: str, problems: list[str]) -> str:
    return f"{len(problems)} {title}:\n" + "\n".join(problems)


# The package


@pytest.fixture(scope="module")
def layers() -> Layers:
    return read_layers(DOC.read_text())


@pytest.fixture(scope="module")
def arrows() -> list[Import]:
    return imports_of(PACKAGE)


def test_layer_list_names_each_module_once(layers: Layers) -> None:
    names = [name for layer in layers for name in layer]
    assert names, f"the block after {MARKER!r} in {DOC.name} is empty"
    assert len(names) == len(set(names)), f"names listed twice: {names}"
    assert layers[-1] == [TOP], f"the package itself ({TOP}) is the top layer"


def test_every_module_has_a_layer(layers: Layers) -> None:
    problems = unplaced(PACKAGE, layers)
    assert not problems, report(f"modules missing from {DOC.relative_to(ROOT)}", problems)


def test_no_import_points_up(arrows: list[Import], layers: Layers) -> None:
    problems = upward(arrows, layers, PACKAGE.name)
    assert not problems, report("imports against the layer order", problems)


def test_no_import_cycles(arrows: list[Import]) -> None:
    problems = cycles(arrows)
    assert not problems, report("import cycles", problems)


# The walker itself, on small packages written to tmp_path


def fake_package(tmp_path: Path, files: dict[str, str]) -> Path:
    """A package ``pkg`` under ``tmp_path`` with ``files`` (paths under ``pkg/``)."""
    package_dir = tmp_path / "pkg"
    for name, source in {"__init__.py": "", **files}.items():
        path = package_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    return package_dir


def edges(package_dir: Path) -> set[tuple[str, str, int]]:
    return {(a.source, a.target, a.line) for a in imports_of(package_dir)}


def test_read_layers_parses_the_block_after_the_marker() -> None:
    text = f"# Title\n\n{MARKER}\n\n```text\nerrors, units\n\nspec\n__init__\n```\n\nmore\n"
    assert read_layers(text) == [["errors", "units"], ["spec"], ["__init__"]]


def test_a_function_level_import_cycle_is_caught(tmp_path: Path) -> None:
    package_dir = fake_package(
        tmp_path,
        {
            "a.py": """\
                def f():
                    from . import b
                    return b
            """,
            "b.py": "from pkg.a import f\n",
            "c.py": "from .a import f\n",
        },
    )
    problems = cycles(imports_of(package_dir))
    assert len(problems) == 1
    assert problems[0].startswith("cycle among pkg.a, pkg.b:")
    assert "pkg/a.py:2: pkg.a -> pkg.b" in problems[0]
    assert "pkg/b.py:1: pkg.b -> pkg.a" in problems[0]
    assert "pkg.c" not in problems[0]


def test_a_module_importing_itself_is_a_cycle(tmp_path: Path) -> None:
    package_dir = fake_package(tmp_path, {"a.py": "x = 1\nimport pkg.a\n"})
    assert cycles(imports_of(package_dir)) == ["cycle among pkg.a:\n    pkg/a.py:2: pkg.a -> pkg.a"]


def test_type_checking_imports_are_ignored(tmp_path: Path) -> None:
    package_dir = fake_package(
        tmp_path,
        {
            "a.py": """\
                import typing
                from typing import TYPE_CHECKING

                if TYPE_CHECKING:
                    from .b import B
                if typing.TYPE_CHECKING:
                    import pkg.b
                else:
                    from . import c
            """,
            "b.py": "from .a import typing\n",
            "c.py": "",
        },
    )
    assert edges(package_dir) == {("pkg.a", "pkg.c", 9), ("pkg.b", "pkg.a", 1)}
    assert cycles(imports_of(package_dir)) == []


def test_from_dot_import_points_to_the_module_or_the_package(tmp_path: Path) -> None:
    package_dir = fake_package(
        tmp_path,
        {
            "sub/__init__.py": "from . import x\nfrom . import name\n",
            "sub/x.py": "from .. import y\nfrom ..sub import x\nimport numpy\n",
            "y.py": "from __future__ import annotations\nfrom .sub.x import *\n",
        },
    )
    assert edges(package_dir) == {
        ("pkg.sub", "pkg.sub.x", 1),
        ("pkg.sub", "pkg.sub", 2),
        ("pkg.sub.x", "pkg.y", 1),
        ("pkg.sub.x", "pkg.sub.x", 2),
        ("pkg.y", "pkg.sub.x", 2),
    }


def test_an_upward_import_is_flagged_with_its_line(tmp_path: Path) -> None:
    package_dir = fake_package(
        tmp_path,
        {
            "low.py": """\
                class Low:
                    def up(self):
                        from .high import High
                        return High
            """,
            "high.py": "from .low import Low\n\nHigh = Low\n",
            "__init__.py": "from .high import High\n",
        },
    )
    layers = [["low"], ["high"], [TOP]]
    assert upward(imports_of(package_dir), layers, "pkg") == [
        "pkg/low.py:3: pkg.low (low) imports pkg.high (high), a higher layer"
    ]


def test_modules_take_the_layer_of_the_longest_name(tmp_path: Path) -> None:
    layers = [["base", "engine/circuit.py"], ["engine", "chip"], ["cli"], [TOP]]
    assert layer_of("pkg.engine.circuit", layers, "pkg") == 0
    assert layer_of("pkg.engine.settle", layers, "pkg") == 1
    assert layer_of("pkg.engine", layers, "pkg") == 1
    assert layer_of("pkg.cli", layers, "pkg") == 2
    assert layer_of("pkg.cli.main", layers, "pkg") == 2
    assert layer_of("pkg", layers, "pkg") == 3
    assert layer_of("pkg.chipset", layers, "pkg") is None
    package_dir = fake_package(tmp_path, {"cli/main.py": "", "chip.py": "", "extra/x.py": ""})
    assert unplaced(package_dir, layers) == ["pkg/extra/x.py: pkg.extra.x is in no layer"]
