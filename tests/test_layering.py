"""The import order rule (docs/architecture.md): formats → classifiers → pipeline → mixtures → manifests → trainer →
audit; the CLI package ``foresight`` is the composition root above them all."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ORDER = ["formats", "classifiers", "pipeline", "mixtures", "manifests", "trainer", "audit", "foresight"]


def _all_imports(path: Path) -> set[str]:
    """Top-level names of every absolute import in a file, module level or inside functions."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


def _imported_packages(path: Path) -> set[str]:
    return _all_imports(path) & set(ORDER)


def test_no_module_imports_a_later_package():
    bad = []
    for pkg in ORDER:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            for dep in _imported_packages(path):
                if ORDER.index(dep) > ORDER.index(pkg):
                    bad.append(f"{path.relative_to(ROOT)} imports {dep}")
    assert not bad, "import order violated:\n" + "\n".join(bad)


def test_classifiers_stay_free_of_datatrove():
    users = [p for p in (ROOT / "classifiers").rglob("*.py") if "datatrove" in _all_imports(p)]
    assert not users, users

