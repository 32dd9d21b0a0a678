"""The layout is the architecture: imports flow downward only (docs/architecture.md)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "spendgate"
CORE = {"errors", "events", "bedrock", "pricing", "settings"}
# package -> the spendgate packages it may import (besides itself)
ALLOWED: dict[str, set[str] | None] = {
    "errors": set(),
    "events": {"errors"},
    "settings": {"errors"},
    "bedrock": {"errors"},
    "pricing": {"errors", "bedrock", "events"},
    "budgets": {"errors", "events", "bedrock", "pricing", "settings"},
    "store": {"errors", "events", "bedrock", "pricing", "settings", "budgets"},  # budget rules
    "analytics": CORE | {"store", "budgets"},
    "recommend": CORE | {"store", "analytics"},
    "alerts": CORE | {"store", "analytics", "budgets"},
    "ingest": CORE | {"store"},
    "sim": {"errors", "bedrock", "pricing", "settings"},
    "gateway": CORE | {"store", "budgets", "ingest", "analytics", "alerts"},
    "web": CORE | {"store", "budgets", "ingest", "analytics", "recommend", "alerts", "gateway"},
    "cli": None,  # the top: anything
}
# pure core: the standard library only (and an optional, lazily used price fallback)
PURE = {"errors", "events", "bedrock", "pricing"}
PURE_EXTRAS = {"genai_prices"}


def modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "migrations" not in p.parts)


def package_of(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py")


def imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append(node.module)
    return out


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_imports_flow_downward(path: Path) -> None:
    package = package_of(path)
    if package in ("__init__", "__main__"):
        return
    assert package in ALLOWED, f"{package} is not in the layer map (tests/test_layers.py)"
    allowed = ALLOWED[package]
    for name in imports(path):
        top = name.split(".")[0]
        if top == "spendgate" and "." in name and allowed is not None:
            target = name.split(".")[1]
            assert target == package or target in allowed, f"{path.name} imports {name}"
        if package in PURE and top not in ("spendgate", "__future__"):
            assert top in sys.stdlib_module_names or top in PURE_EXTRAS, (
                f"pure-core module {path.name} imports {name}"
            )


def test_the_rule_catches_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "x.py"
    bad.write_text("import sqlalchemy\nfrom spendgate.gateway import app\n")
    assert imports(bad) == ["sqlalchemy", "spendgate.gateway"]
