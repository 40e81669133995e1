"""Origins read from Python source: the CPython standard library (``code``), docstrings of sympy/numpy/scipy
(``math`` and ``academia``) and the Python language reference shipped as ``pydoc_data.topics``.

Source files are parsed with :mod:`ast` (never imported), so nothing runs and the output depends only on the
installed files.
"""

from __future__ import annotations

import ast
import re
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

from foresight.corpus.base import (
    Doc,
    Provenance,
    dist_provenance,
    keep,
    package_dir,
    prose_paragraphs,
    split_blocks,
    tidy,
)
from foresight.formats.errors import SetupError

# Directories that hold tests, vendored data or generated tables rather than written code/prose.
_SKIP_DIRS = {"test", "tests", "testing", "idle_test", "__pycache__", "site-packages", "dist-packages",
              "encodings", "_antlr", "benchmarks", "_vendor", "ensurepip", "turtledemo"}
_MIN_CODE_CHUNK = 400
CODE_DOC_BYTES = 6000


def stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"]).resolve()


def python_provenance(content: str) -> Provenance:
    version = ".".join(map(str, sys.version_info[:3]))
    return Provenance("CPython", version, "PSF-2.0", content)


def _py_files(root: Path, skip: set[str] = _SKIP_DIRS) -> Iterator[Path]:
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if skip.intersection(rel.parts[:-1]) or rel.name.startswith(("test_", "conftest")):
            continue
        yield path


def _parse(path: Path) -> tuple[str, ast.Module] | None:
    try:
        source = path.read_bytes().decode("utf-8")
        return source, ast.parse(source)
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return None  # py2-only or deliberately broken files (e.g. lib2to3 fixtures) are not corpus material


# ---- code: the standard library, one document per top-level function/class (small neighbours merged) ----

def _license_header_end(lines: list[str]) -> int:
    """Number of leading lines that form a copyright/licence comment block (0 if there is none)."""
    i = 0
    while i < len(lines) and (lines[i].startswith("#") or not lines[i].strip()):
        i += 1
    header = "\n".join(lines[:i]).lower()
    return i if "copyright" in header or "license" in header else 0


def _node_start(node: ast.stmt, lines: list[str]) -> int:
    """0-based first line of a top-level definition, including decorators and the comments just above it."""
    start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])]) - 1
    while start > 0 and lines[start - 1].startswith("#"):
        start -= 1
    return start


def code_chunks(source: str, tree: ast.Module) -> list[tuple[int, str]]:
    """Split a module at its top-level ``def``/``class`` statements; returns (first line, text) pairs."""
    lines = source.split("\n")
    cuts = sorted({_node_start(n, lines) for n in tree.body
                   if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))} | {0})
    cuts.append(len(lines))
    chunks: list[tuple[int, str]] = []
    pending_start, pending = 0, ""
    for a, b in zip(cuts, cuts[1:], strict=False):
        if a == 0:
            a = _license_header_end(lines[:b])
        text = tidy("\n".join(lines[a:b]))
        if not text:
            continue
        if not pending:
            pending_start = a
        pending = f"{pending}\n\n{text}" if pending else text
        if len(pending.encode("utf-8")) >= _MIN_CODE_CHUNK:
            chunks.append((pending_start + 1, pending))
            pending = ""
    if pending:
        if chunks:  # a short tail joins the previous chunk rather than becoming a scrap
            first, prev = chunks[-1]
            chunks[-1] = (first, f"{prev}\n\n{pending}")
        else:
            chunks.append((pending_start + 1, pending))
    return chunks


def stdlib_code_docs() -> Iterator[Doc]:
    root = stdlib_dir()
    for path in _py_files(root, _SKIP_DIRS | {"pydoc_data", "lib2to3", "idlelib"}):
        parsed = _parse(path)
        if parsed is None:
            continue
        rel = path.relative_to(root).as_posix()
        k = 0
        for line, chunk in code_chunks(*parsed):
            for piece in split_blocks(chunk, CODE_DOC_BYTES):
                if keep(piece, min_letters=0.45):
                    yield Doc(f"python-stdlib/{rel}#{k}", piece, "code", f"python-stdlib://{rel}#L{line}")
                    k += 1


# ---- docstrings: math and academia ----

def _is_public(name: str) -> bool:
    return not name.startswith("_")


def _docstrings(tree: ast.Module, module: str) -> Iterator[tuple[str, str]]:
    """(qualified name, cleaned docstring) for the module, its public classes/functions and methods, in order.

    Also picks up ``add_newdoc``/``add_docstr`` calls, where numpy, scipy and torch keep the docs of C objects.
    """
    doc = ast.get_docstring(tree)
    if doc:
        yield module, doc

    def visit(body: list[ast.stmt], prefix: str) -> Iterator[tuple[str, str]]:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                if not _is_public(node.name):
                    continue
                qual = f"{prefix}.{node.name}"
                d = ast.get_docstring(node)
                if d:
                    yield qual, d
                if isinstance(node, ast.ClassDef):
                    yield from visit(node.body, qual)
            elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
                yield from _newdoc(node.value)

    yield from visit(tree.body, module)


def _newdoc(call: ast.Call) -> Iterator[tuple[str, str]]:
    func = call.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
    if name not in ("add_newdoc", "add_newdoc_ufunc", "add_docstr") or len(call.args) < 2:
        return
    args = [a.value if isinstance(a, ast.Constant) else None for a in call.args]
    if name in ("add_newdoc_ufunc", "add_docstr") and isinstance(args[1], str):  # torch: add_docstr(obj, doc)
        yield _qual(call.args[0]), _clean(args[1])
    elif len(args) >= 3 and isinstance(args[0], str) and isinstance(args[1], str) and isinstance(args[2], str):
        yield f"{args[0]}.{args[1]}", _clean(args[2])  # numpy: add_newdoc(module, name, doc)
    elif len(args) == 2 and isinstance(args[0], str) and isinstance(args[1], str):
        yield args[0], _clean(args[1])  # scipy.special: add_newdoc(name, doc)


def _qual(node: ast.expr) -> str:
    return ast.unparse(node)


def _clean(doc: str) -> str:
    import inspect

    return inspect.cleandoc(doc)


def _module_name(root: Path, path: Path, package: str) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = [package, *rel.parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


_RST_NOISE = re.compile(r"^\s*\.\. (plot|only|versionadded|versionchanged|deprecated|autosummary)::.*$", re.M)


def docstring_docs(dist: str, package: str, source: str, include: tuple[str, ...] = (),
                   exclude: tuple[str, ...] = ()) -> Iterator[Doc]:
    """One document per public docstring (titled with its qualified name) of modules under ``package``.

    ``include``/``exclude`` are module-name prefixes (e.g. ``scipy.special``) that route a package's docstrings
    between ``math`` and ``academia``.
    """
    root = package_dir(dist, package)
    for path in _py_files(root):
        module = _module_name(root, path, package)
        if include and not module.startswith(include):
            continue
        if exclude and module.startswith(exclude):
            continue
        parsed = _parse(path)
        if parsed is None:
            continue
        rel = path.relative_to(root).as_posix()
        seen: set[str] = set()
        for qual, doc in _docstrings(parsed[1], module):
            text = tidy(_RST_NOISE.sub("", doc))
            if qual in seen:
                continue
            seen.add(qual)
            for k, piece in enumerate(split_blocks(f"{qual}\n\n{text}")):
                if keep(piece):
                    yield Doc(f"{package}/{qual}#{k}", piece, source, f"pypi://{dist}/{package}/{rel}#{qual}")


def docstring_provenance(dist: str, what: str) -> Provenance:
    return dist_provenance(dist, f"docstrings of {what}")


# ---- academia: the Python language reference (pydoc_data.topics) ----

def pydoc_topic_docs() -> Iterator[Doc]:
    path = stdlib_dir() / "pydoc_data" / "topics.py"
    parsed = _parse(path)
    if parsed is None:
        raise SetupError(f"cannot parse {path}; the Python installation is incomplete")
    topics: dict[str, str] = {}
    for node in ast.walk(parsed[1]):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and isinstance(value, ast.Constant):
                    if isinstance(key.value, str) and isinstance(value.value, str):
                        topics[key.value] = value.value
    for name in sorted(topics):
        for k, piece in enumerate(split_blocks(tidy(topics[name]))):
            if keep(piece):
                yield Doc(f"python-docs/{name}#{k}", piece, "academia", f"python-stdlib://pydoc_data/topics.py#{name}")


# ---- web-crawl: documentation pages, i.e. the running prose of a package's docstrings, one page per module ----

def doc_prose_docs(dist: str, package: str, source: str = "web-crawl", page_bytes: int = 4000) -> Iterator[Doc]:
    """Prose paragraphs of each module's docstrings (what its rendered documentation page says in words)."""
    root = package_dir(dist, package)
    for path in _py_files(root):
        parsed = _parse(path)
        if parsed is None:
            continue
        module = _module_name(root, path, package)
        paragraphs: list[str] = []
        for _, doc in _docstrings(parsed[1], module):
            for para in prose_paragraphs(doc):
                if para not in paragraphs:  # overloads and aliases repeat the same sentences
                    paragraphs.append(para)
        rel = path.relative_to(root).as_posix()
        for k, piece in enumerate(split_blocks("\n\n".join(paragraphs), page_bytes)):
            text = f"{module}\n\n{piece}"
            if keep(text):
                yield Doc(f"{package}-docs/{module}#{k}", text, source, f"pypi://{dist}/{package}/{rel}")
