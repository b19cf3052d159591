"""House rules that keep the layers honest, checked on the source itself."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "sandex"
DOMAIN = ["keys", "accounts", "exchange"]
FORBIDDEN_PREFIXES = (
    "sandex.storage",
    "sandex.service",
    "sandex.http",
    "sandex.web",
    "sandex.cli",
    "sandex.client",
    "sandex.bootstrap",
    "sandex.config",
    "sqlalchemy",
    "alembic",
    "starlette",
    "fastapi",
    "httpx",
    "requests",
    "uvicorn",
    "granian",
    "redis",
    "psycopg",
    "sqlite3",
    "socket",
    "asyncio",
    "typer",
    "rich",
    "urllib.request",
    "http",
    "subprocess",
    "logging",
    "os",
    "pathlib",
    "shutil",
    "threading",
)
FORBIDDEN_CALLS = {
    ("time", "time"),
    ("time", "time_ns"),
    ("time", "monotonic"),
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("date", "today"),
}


def _modules(package: str) -> list[Path]:
    return sorted((SRC / package).rglob("*.py"))


def _imports(tree: ast.AST) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = [
        f"imports {name}"
        for name in _imports(tree)
        if any(name == p or name.startswith(p + ".") for p in FORBIDDEN_PREFIXES)
    ]
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            owner_name = (
                owner.id
                if isinstance(owner, ast.Name)
                else (owner.attr if isinstance(owner, ast.Attribute) else None)
            )
            if (owner_name, node.func.attr) in FORBIDDEN_CALLS:
                found.append(
                    f"reads the clock ({owner_name}.{node.func.attr}) at line {node.lineno}"
                )
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "open"
        ):
            found.append(f"opens a file at line {node.lineno}")
    return found


@pytest.mark.parametrize("package", [p for p in DOMAIN if (SRC / p).is_dir()])
def test_domain_packages_do_no_io_and_read_no_clock(package: str) -> None:
    problems = {str(p.relative_to(SRC)): v for p in _modules(package) if (v := _violations(p))}
    assert problems == {}


def test_the_rule_catches_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import time\nfrom sandex.storage import tables\nx = time.time()\n")
    assert _violations(bad) == ["imports sandex.storage", "reads the clock (time.time) at line 3"]


def test_the_service_layer_never_imports_adapters() -> None:
    adapters = (
        "sandex.storage",
        "sandex.http",
        "sandex.web",
        "sandex.cli",
        "sandex.bootstrap",
        "sqlalchemy",
        "alembic",
        "typer",
        "rich",
        "redis",
        "fastapi",
        "starlette",
        "uvicorn",
    )
    problems = {}
    for path in _modules("service"):
        bad = [
            n
            for n in _imports(ast.parse(path.read_text()))
            if any(n == a or n.startswith(a + ".") for a in adapters)
        ]
        if bad:
            problems[str(path.relative_to(SRC))] = bad
    assert problems == {}


def test_every_public_module_declares_all() -> None:
    missing = [
        str(p.relative_to(SRC))
        for p in SRC.rglob("*.py")
        if "migrations" not in p.parts
        and p.name != "__main__.py"
        and "__all__" not in p.read_text()
    ]
    assert missing == []


def test_http_receives_what_bootstrap_builds_and_never_reaches_storage() -> None:
    forbidden = ("sandex.storage", "sandex.bootstrap", "sandex.cli", "sqlalchemy", "alembic")
    problems = {}
    for path in _modules("http"):
        bad = [
            n
            for n in _imports(ast.parse(path.read_text()))
            if any(n == a or n.startswith(a + ".") for a in forbidden)
        ]
        if bad:
            problems[str(path.relative_to(SRC))] = bad
    assert problems == {}


CLI_FORBIDDEN = ("sandex.storage", "sqlalchemy", "alembic")
STORAGE_HANDLES = {"db", "uow"}
"""What :class:`sandex.bootstrap.Sandex` holds of storage itself; the CLI uses services."""


def _cli_violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = [
        f"imports {name}"
        for name in _imports(tree)
        if any(name == p or name.startswith(p + ".") for p in CLI_FORBIDDEN)
    ]
    found += [
        f"reads sx.{node.attr} at line {node.lineno}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr in STORAGE_HANDLES
        and isinstance(node.value, ast.Name)
        and node.value.id == "sx"
    ]
    return found


def test_the_cli_reaches_storage_only_through_services() -> None:
    problems = {str(p.relative_to(SRC)): v for p in _modules("cli") if (v := _cli_violations(p))}
    assert problems == {}


def test_the_cli_rule_catches_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from sandex.storage.exchange_store import SqlExchangeStore\n"
        "import sqlalchemy\n"
        "def credit(sx):\n"
        "    SqlExchangeStore(sx.db)\n"
        "    with sx.uow() as uow:\n"
        "        pass\n"
    )
    assert _cli_violations(bad) == [
        "imports sandex.storage.exchange_store",
        "imports sqlalchemy",
        "reads sx.db at line 4",
        "reads sx.uow at line 5",
    ]
