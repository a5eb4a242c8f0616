"""The layout's rules: no import circle in coop/ (function-local imports included), production
code never imports the development tools, one place for templates, every blueprint registered
from create_app's one list, and migrations that do not run live code."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from flask import Blueprint

from coop import blueprints
from coop.ledger import ddl

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "coop"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(module: str) -> set[str]:
    """Every module of the project `module` imports, anywhere in its file (a function-local
    import hides a dependency but is one all the same)."""
    path = MODULES[module]
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in MODULES else target)
    return found


def _edges(module: str) -> set[str]:
    """The project's modules that importing `module` runs: what it imports, and the packages
    above those (an import runs each package's __init__ first). The packages above `module`
    itself are left out unless it names them: Python runs them before it anyway."""
    edges = set()
    for name in _imports(module):
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            above = ".".join(parts[:i])
            implied = i < len(parts)
            if (above in MODULES and above != module
                    and not (implied and module.startswith(above + "."))):
                edges.add(above)
    return edges


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        circles.append(sorted(group))
    return circles


def test_no_import_circle_in_coop():
    graph = {module: _edges(module) for module in MODULES}
    assert _circles(graph) == [], "import circles (a lower domain must not import a higher " \
                                  "one: wire a hook in create_app's register_domain_hooks)"


def test_the_circle_finder_finds_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _circles(graph) == [["a", "b", "c"]]


def test_production_code_never_imports_the_development_tools():
    for module in MODULES:
        outside = {name for name in _imports(module)
                   if name.split(".")[0] in ("devtools", "tests", "bench")}
        assert not outside, f"{module} imports {outside}"


def test_every_module_of_coop_imports():
    """Each module imports in a fresh interpreter (one for all: a module no test reaches,
    such as a CLI command's, still has to load)."""
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    result = subprocess.run([sys.executable, "-c", code, *MODULES], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_templates_live_in_one_place():
    assert not list(PACKAGE.rglob("templates")), "templates go in templates/<domain>/"


def test_every_blueprint_is_registered_from_the_one_list(app):
    defined = set()
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Blueprint"
                    and node.args and isinstance(node.args[0], ast.Constant)):
                defined.add(node.args[0].value)
    listed = [bp.name for bp in blueprints()]
    assert sorted(listed) == sorted(defined) == sorted(app.blueprints)
    assert all(isinstance(bp, Blueprint) for bp in blueprints())


def test_csrf_is_exempted_by_the_blueprints_marker_only(app):
    exempt = {bp.name for bp in app.extensions["csrf"]._exempt_blueprints}
    marked = {bp.name for bp in blueprints() if getattr(bp, "csrf_exempt", False)}
    # Bearer tokens; Stripe's signed webhooks; the SMS provider's signed delivery reports; the
    # one-click unsubscribe of a mail program (RFC 8058), whose signed token is the proof.
    assert exempt == marked == {"api", "payments", "messages_status", "messages_public"}


def test_migrations_run_no_live_code_of_the_app():
    """An old migration must do what it did when it was written: it may use the app's column
    types (coop.common.models) but not, say, the ledger's current DDL."""
    for path in sorted((ROOT / "migrations" / "versions").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert not name.startswith("coop") or name == "coop.common.models", \
                    f"{path.name} imports {name}"


def test_the_ledger_triggers_are_those_migration_0003_froze():
    """coop/ledger/ddl.py (what the suite re-creates) and the migration's frozen copy agree:
    a change to the triggers needs a new migration, and this test then points at it."""
    source = (ROOT / "migrations" / "versions" / "0003_ledger.py").read_text(encoding="utf-8")
    frozen: dict = {}
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id in ("SQLITE", "SQLITE_DROP", "POSTGRES", "POSTGRES_DROP"):
                frozen[node.targets[0].id] = ast.literal_eval(node.value)
    assert frozen == {"SQLITE": ddl.SQLITE, "SQLITE_DROP": ddl.SQLITE_DROP,
                      "POSTGRES": ddl.POSTGRES, "POSTGRES_DROP": ddl.POSTGRES_DROP}


TESTS = ROOT / "tests"
TEST_PACKAGES = {p.name for p in TESTS.iterdir() if p.is_dir() and (p / "__init__.py").exists()}


def test_tests_mirror_the_package():
    """A domain's tests live in tests/<domain>/; besides those, only the suite's own packages
    (plugins: fixtures; support: helpers that are not fixtures; e2e: the browser suite)."""
    domains = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert TEST_PACKAGES - {"plugins", "support", "e2e"} <= domains, \
        TEST_PACKAGES - {"plugins", "support", "e2e"} - domains


def test_no_test_module_imports_another_or_its_fixtures():
    """Fixtures come through conftest.py's pytest_plugins, helpers from tests/support: no test
    module imports from a test module or from conftest (and so no `# noqa` fixture imports)."""
    offences = []
    for path in sorted(TESTS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tests"):
                last = node.module.split(".")[-1]
                if last.startswith("test_") or last == "conftest":
                    offences.append(f"{path.relative_to(ROOT)}: from {node.module}")
    assert offences == []


def test_the_common_floor_imports_no_domain():
    """coop/common/ is the lowest floor: it imports the extensions and itself, never a domain
    (what it needs of one is wired by create_app, as `web.load_coops_with`)."""
    for module in MODULES:
        if module.startswith("coop.common"):
            upwards = {name for name in _imports(module) if name.startswith("coop.")
                       and not name.startswith(("coop.common", "coop.extensions"))}
            assert not upwards, f"{module} imports {upwards}"
