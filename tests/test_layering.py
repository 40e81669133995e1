"""The import order rule (docs/architecture.md): formats → corpus → classifiers → pipeline → mixtures → manifests →
trainer → audit → cli; ``foresight.cli`` is the composition root above them all, and ``foresight/__init__.py`` is the
façade over the layers. Every module lives under the one ``foresight`` import package."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "src" / "foresight"
ORDER = ["formats", "corpus", "classifiers", "pipeline", "mixtures", "manifests", "trainer", "audit", "cli"]


def _all_imports(path: Path) -> set[str]:
    """Dotted names of every absolute import in a file, module level or inside functions; ``from foresight import x``
    is reported as ``foresight.x``."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module)
            if node.module == "foresight":
                out |= {f"foresight.{alias.name}" for alias in node.names}
    return out


def _imported_layers(path: Path) -> set[str]:
    return {name.split(".")[1] for name in _all_imports(path)
            if name.startswith("foresight.") and name.split(".")[1] in ORDER}


def test_every_module_lives_in_a_layer():
    layers = {p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert layers == set(ORDER)
    assert sorted(p.name for p in PKG.glob("*.py")) == ["__init__.py", "__main__.py"]


def test_no_module_imports_a_later_layer():
    bad = []
    for layer in ORDER:
        for path in sorted((PKG / layer).rglob("*.py")):
            for dep in _imported_layers(path):
                if ORDER.index(dep) > ORDER.index(layer):
                    bad.append(f"{path.relative_to(ROOT)} imports {dep}")
    assert not bad, "import order violated:\n" + "\n".join(bad)


def test_no_other_top_level_import_names():
    """Nothing imports the pre-src top-level names (``import pipeline``): they no longer exist."""
    old = set(ORDER) | {"commands"}
    files = [p for d in ("src", "tests", "benchmarks") for p in sorted((ROOT / d).rglob("*.py"))]
    bad = [f"{p.relative_to(ROOT)}: {n}" for p in files for n in _all_imports(p) if n.split(".")[0] in old]
    assert not bad, bad


def test_classifiers_stay_free_of_datatrove():
    users = [p for p in (PKG / "classifiers").rglob("*.py")
             if "datatrove" in {n.split(".")[0] for n in _all_imports(p)}]
    assert not users, users
