"""Each table has one writing domain: no module of one domain inserts, updates or deletes the
rows of another domain's models (it calls that domain's services instead)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import coop

ROOT = Path(coop.__file__).parent
# common/models.py holds column helpers, no tables: it is no domain.
DOMAINS = sorted(p.parent.name for p in ROOT.glob("*/models.py") if p.parent.name != "common")
WRITES = {"update", "insert", "delete"}
LOADERS = {"get", "scalar", "scalars", "get_or_404", "one", "first"}


def _foreign_models(tree: ast.Module, domain: str) -> dict[str, str]:
    """Mapped classes this module imports from another domain's models: name -> domain."""
    found = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or not node.module:
            continue
        parts = node.module.split(".")
        if parts[-1] != "models" or len(parts) < 2:
            continue
        owner = parts[-2]
        if node.level == 1 and node.module == "models":
            continue
        if owner in DOMAINS and owner != domain:
            models = _mapped(owner)
            for alias in node.names:
                if alias.name in models:
                    found[alias.asname or alias.name] = owner
    return found


def _loaded_model(call: ast.Call, foreign) -> str | None:
    """The foreign model a row is loaded as: db.session.get(Model, ...) or
    db.session.scalar(select(Model)...)."""
    func = call.func
    if not (isinstance(func, ast.Attribute) and func.attr in LOADERS and call.args):
        return None
    first = call.args[0]
    while isinstance(first, ast.Call) and isinstance(first.func, ast.Attribute):
        first = first.func.value  # select(Model).where(...).limit(...)
    if isinstance(first, ast.Call) and isinstance(first.func, ast.Name) \
            and first.func.id == "select" and first.args:
        first = first.args[0]
    return first.id if isinstance(first, ast.Name) and first.id in foreign else None


def _mapped(domain: str) -> set[str]:
    """The names of the table classes declared in `domain`'s models."""
    from coop.extensions import db
    __import__(f"coop.{domain}.models")
    return {m.class_.__name__ for m in db.Model.registry.mappers
            if m.class_.__module__ == f"coop.{domain}.models"}


def violations(path: Path, domain: str) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    foreign = _foreign_models(tree, domain)
    if not foreign:
        return []
    found = []

    def where(node, what):
        found.append(f"{path.relative_to(ROOT.parent)}:{node.lineno}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name in WRITES and node.args:
                target = node.args[0]
                base = target.value if isinstance(target, ast.Attribute) else target
                if isinstance(base, ast.Name) and base.id in foreign:
                    where(node, f"{name}({base.id}) writes {foreign[base.id]}'s table")
            if isinstance(func, ast.Name) and func.id in foreign:
                where(node, f"{func.id}(...) makes a row of {foreign[func.id]}'s table")
        if (isinstance(node, ast.Attribute) and node.attr == "__table__"
                and isinstance(node.value, ast.Name) and node.value.id in foreign):
            where(node, f"{node.value.id}.__table__ of {foreign[node.value.id]}")
    # Assignments to the attributes of a row loaded from (or annotated as) a foreign model.
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        rows: dict[str, str] = {}
        for arg in fn.args.args + fn.args.kwonlyargs:
            if isinstance(arg.annotation, ast.Name) and arg.annotation.id in foreign:
                rows[arg.arg] = arg.annotation.id
        for node in ast.walk(fn):
            if (isinstance(node, ast.Assign) and len(node.targets) == 1
                    and isinstance(node.targets[0], ast.Name)
                    and isinstance(node.value, ast.Call)):
                loaded = _loaded_model(node.value, foreign)
                if loaded:
                    rows[node.targets[0].id] = loaded
        for node in ast.walk(fn):
            targets = (node.targets if isinstance(node, ast.Assign)
                       else [node.target] if isinstance(node, ast.AugAssign) else [])
            for target in targets:
                if (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
                        and target.value.id in rows):
                    model = rows[target.value.id]
                    where(target, f"{target.value.id}.{target.attr} = ... on {model} "
                                  f"of {foreign[model]}")
    return found


def test_each_table_has_one_writing_domain():
    found = []
    for domain in DOMAINS:
        for path in sorted((ROOT / domain).rglob("*.py")):
            found += violations(path, domain)
    assert found == [], "\n".join(found)


def test_the_scan_sees_a_write_to_another_domains_table(tmp_path):
    # Each way of writing another domain's rows is found, and the file's own models are not.
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from ..listings.models import Listing\n"
        "def f(listing_id):\n"
        "    db.session.execute(update(Listing).values(status='sold'))\n"
        "    db.session.execute(Listing.__table__.insert(), [])\n"
        "    row = db.session.get(Listing, listing_id)\n"
        "    row.committed_g = 5\n"
        "    db.session.add(Listing(quantity_g=1))\n")
    kinds = [line.split(": ", 1)[1] for line in violations_at(probe, "pools")]
    assert len(kinds) == 4, kinds


def violations_at(path: Path, domain: str) -> list[str]:
    global ROOT
    saved, ROOT = ROOT, path.parent.parent
    try:
        return violations(path, domain)
    finally:
        ROOT = saved


def test_listings_learn_the_supply_reserved_by_pools_from_create_app(app, monkeypatch):
    # Wired at app creation, not by importing pools: without the wiring listings refuse to
    # guess (0 would let a farmer withdraw what an open pool needs).
    from coop.listings import services as listing_services
    from coop.pools import services as pool_services
    assert listing_services._SUPPLY_RESERVATION is pool_services.reserved_g
    monkeypatch.setattr(listing_services, "_SUPPLY_RESERVATION", None)
    with pytest.raises(RuntimeError):
        listing_services.reserved_by_open_pools(1, 1, 1)
