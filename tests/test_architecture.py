"""Guards that keep the layers and the single writer of inbox rows.

Reads every import (``ast``) of the product packages and fails on an upward import:
``shopbase`` imports nothing of ours, ``ordersvc`` only ``shopbase``, ``inbox`` not ``bot``
or ``shopdesk``, ``bot`` not ``shopdesk`` (the composition root). And fails when a row of an
inbox table is constructed (``Message(...)``, ``session.add(Contact(...))``) outside
``inbox/actions``: every inbox write is an action. Tests and migrations are not product code.
"""

from __future__ import annotations

import ast
from pathlib import Path

from sqlmodel import SQLModel

import inbox.models

ROOT = Path(__file__).resolve().parent.parent
LAYERS = {"shopbase": 0, "ordersvc": 1, "inbox": 2, "bot": 3, "shopdesk": 4}
ACTIONS = ROOT / "inbox" / "actions"


def _product_files() -> list[Path]:
    files = []
    for package in LAYERS:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            files.append(path)
    return files


def _package_of(path: Path) -> str:
    return path.relative_to(ROOT).parts[0]


def _imported_modules(tree: ast.AST, path: Path) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the file's package
                base = list(path.relative_to(ROOT).with_suffix("").parts[: -node.level])
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((node.lineno, module))
    return found


def test_the_product_packages_exist() -> None:
    files = _product_files()
    assert {_package_of(f) for f in files} == set(LAYERS)
    assert len(files) > 50


def test_no_package_imports_a_layer_above_it() -> None:
    upward: list[str] = []
    for path in _product_files():
        package = _package_of(path)
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for lineno, module in _imported_modules(tree, path):
            target = module.split(".", 1)[0]
            if target in LAYERS and LAYERS[target] > LAYERS[package]:
                upward.append(f"{path.relative_to(ROOT)}:{lineno} imports {module}")
    assert upward == [], "upward imports:\n" + "\n".join(upward)


def _inbox_tables() -> set[str]:
    return {
        name
        for name, value in vars(inbox.models).items()
        if isinstance(value, type)
        and issubclass(value, SQLModel)
        and value.__module__ == inbox.models.__name__
        and getattr(value, "__table__", None) is not None
    }


def _names_bound_to_inbox_tables(tree: ast.AST, tables: set[str]) -> dict[str, str]:
    """Local name -> table class, for ``from inbox.models import X [as Y]``; plus module aliases."""
    bound: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "inbox.models":
            for alias in node.names:
                if alias.name in tables:
                    bound[alias.asname or alias.name] = alias.name
    return bound


def _module_aliases(tree: ast.AST) -> set[str]:
    aliases: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "inbox.models":
                    aliases.add(alias.asname or "inbox.models")
        elif isinstance(node, ast.ImportFrom) and node.module == "inbox":
            aliases.update(alias.asname or alias.name for alias in node.names if alias.name == "models")
    return aliases


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def test_the_guard_knows_the_inbox_tables() -> None:
    assert {"Message", "Conversation", "Contact", "OutboxMessage", "AuditEvent"} <= _inbox_tables()


#: the outbox owns its own table: it writes Slack alert notices in the committing transaction
#: (a synchronous before_commit hook, where no async action can run); nothing else may
ALLOWED = {("inbox/outbox.py", "OutboxMessage")}


def test_inbox_rows_are_created_only_by_actions() -> None:
    tables = _inbox_tables()
    outside: list[str] = []
    for path in _product_files():
        if path.is_relative_to(ACTIONS) or path == ROOT / "inbox" / "models.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        bound = _names_bound_to_inbox_tables(tree, tables)
        modules = _module_aliases(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = _dotted(node.func)
            table = bound.get(name)
            if table is None and "." in name:
                prefix, _, attr = name.rpartition(".")
                table = attr if prefix in modules and attr in tables else None
            if table is not None and (str(path.relative_to(ROOT)), table) not in ALLOWED:
                outside.append(f"{path.relative_to(ROOT)}:{node.lineno} creates a {table} row")
    assert outside == [], "inbox rows created outside inbox/actions:\n" + "\n".join(outside)


# -- no ``Any`` at the seams: sessions and settings are typed ---------------------------------------

SEAM_PARAMETERS = {"session", "sessions", "settings", "db"}


def _any_typed_seam_parameters(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, name) of every parameter named like a session or the settings annotated ``Any``
    (also ``typing.Any``, ``"Any"`` and ``Any | None``)."""

    def is_any(node: ast.expr | None) -> bool:
        if node is None:
            return False
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            try:
                node = ast.parse(node.value, mode="eval").body
            except SyntaxError:
                return False
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            return is_any(node.left) or is_any(node.right)
        if isinstance(node, ast.Subscript) and _dotted(node.value) in ("Optional", "typing.Optional"):
            return is_any(node.slice)
        return _dotted(node) in ("Any", "typing.Any")

    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            args = node.args
            params = [*args.posonlyargs, *args.args, *args.kwonlyargs]
            found.extend((p.lineno, p.arg) for p in params if p.arg in SEAM_PARAMETERS and is_any(p.annotation))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            # dataclass and class fields: ``sessions: Any``
            if node.target.id in SEAM_PARAMETERS and is_any(node.annotation):
                found.append((node.lineno, node.target.id))
    return found


def test_the_any_guard_finds_what_it_looks_for() -> None:
    sample = ast.parse(
        "from typing import Any\n"
        "import typing\n"
        "def a(session: Any, settings: typing.Any = None) -> None: ...\n"
        "async def b(*, db: 'Any', sessions: Any | None = None, other: Any = 1) -> None: ...\n"
        "class C:\n"
        "    sessions: Any\n"
        "    def m(self, session: AsyncSession, settings: BotSettings) -> None: ...\n"
    )
    assert sorted(name for _line, name in _any_typed_seam_parameters(sample)) == [
        "db", "session", "sessions", "sessions", "settings",
    ]


def test_no_any_for_sessions_or_settings() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {name}: Any"
        for path in _product_files()
        for line, name in _any_typed_seam_parameters(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert not offenders, (
        "type sessions as AsyncSession / async_sessionmaker[AsyncSession] and settings as the package's "
        "settings protocol (bot.config.BotSettings) or shopdesk.settings.Settings:\n" + "\n".join(offenders)
    )
