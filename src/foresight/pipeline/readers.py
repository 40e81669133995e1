"""Input discovery and tolerant record readers for JSONL(.gz/.zst), Parquet and WARC.

datatrove's own readers skip bad lines silently or stop at a bad byte; ours yield a :class:`Problem`
for every record they cannot turn into a document (with file and line), keep reading the rest of the
file, and never lose a record without counting it.
"""

from __future__ import annotations

import contextlib
import glob
import gzip
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from foresight.formats.errors import InputError

JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst", ".ndjson", ".ndjson.gz", ".ndjson.zst")
PARQUET_SUFFIXES = (".parquet",)
WARC_SUFFIXES = (".warc", ".warc.gz", ".arc.gz")
_SOURCE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
MAX_SOURCE_CHARS = 64  # a source names a partition directory (source=<name>): a label, not free text


@dataclass(frozen=True)
class InputFile:
    """One input file: where it is, its format, and the source its directory name implies."""

    path: str
    fmt: str
    dir_source: str
    rel: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    def state(self, cache: dict[str, Any] | None = None) -> list[Any] | None:
        """[size, content hash] of the file now (``pipeline.inputstate``; None when it cannot be read): a rerun
        compares it, so an input edited in place is never silently skipped by the first run's completion markers."""
        from foresight.pipeline.inputstate import input_state

        return input_state(self.path, cache)


@dataclass
class Record:
    text: str
    doc_id: str
    source: str
    url: str | None
    path: str | None


@dataclass
class Problem:
    """A record (or the unreadable rest of a file, counted once) that could not become a document."""

    reason: str
    where: str
    detail: str = ""
    count: int = 1


def detect_format(name: str) -> str | None:
    low = name.lower()
    if low.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if low.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if low.endswith(WARC_SUFFIXES):
        return "warc"
    return None


def clean_source(name: str) -> str:
    """A source name usable as a Hive partition value (``source=<name>``); ValueError if it is too long."""
    cleaned = _SOURCE_CHARS.sub("-", name.strip()).strip("-.")
    if len(cleaned) > MAX_SOURCE_CHARS:
        raise InputError(f"source {cleaned[:40]!r}… is {len(cleaned)} characters; at most {MAX_SOURCE_CHARS}")
    return cleaned or "unknown"


def _dir_source(parent: str) -> str:
    try:
        return clean_source(parent)
    except ValueError as e:
        raise InputError(f"input directory {parent!r}: {e}; rename it or pass --source") from None


def _is_url(item: str) -> bool:
    return "://" in item and not item.startswith("file://")


def _expand_url(item: str) -> list[tuple[str, str, str]]:
    import fsspec

    fs, root = fsspec.core.url_to_fs(item)
    if any(ch in root for ch in "*?["):
        found = sorted(fs.glob(root))
        base = root.split("*", 1)[0].rsplit("/", 1)[0]
    elif fs.isdir(root):
        found, base = sorted(fs.find(root)), root
    elif fs.exists(root):
        found, base = [root], root.rsplit("/", 1)[0]
    else:
        raise FileNotFoundError(f"input {item} does not exist; pass files, directories or globs of JSONL/Parquet/WARC")
    return [(fs.unstrip_protocol(p), p.removeprefix(base).lstrip("/") or p.rsplit("/", 1)[-1],
             p.rsplit("/", 2)[-2] if "/" in p else "") for p in found]


def _expand_local(item: str) -> list[tuple[str, str, str]]:
    item = item.removeprefix("file://")
    p = Path(item)
    if p.is_dir():
        found = sorted(f for f in p.rglob("*") if _file_or_dangling(f) and not f.name.startswith("."))
        base = p
    elif any(ch in item for ch in "*?["):
        found = sorted(Path(f) for f in glob.glob(item, recursive=True) if _file_or_dangling(Path(f)))
        base = Path(os.path.dirname(re.split(r"[*?\[]", item, maxsplit=1)[0]) or ".")
    elif p.is_file():
        found, base = [p], p.parent
    else:
        raise FileNotFoundError(f"input {item} does not exist; pass files, directories or globs of JSONL/Parquet/WARC")
    out = []
    for f in found:
        try:
            rel = str(f.relative_to(base))
        except ValueError:
            rel = f.name
        # a dangling link stays itself: it is an input that cannot be read, reported and counted as errored
        real = f.resolve() if f.exists() else f.absolute()
        out.append((str(real), rel, real.parent.name))
    return out


def _file_or_dangling(f: Path) -> bool:
    """A file, or a symlink to a file that is missing (never skipped silently: see ``inputstate.unreadable_inputs``)."""
    return f.is_file() or (f.is_symlink() and not f.exists())


def discover_inputs(inputs: list[str], exclude: Path | None = None) -> tuple[list[InputFile], list[str]]:
    """Expand files/directories/globs/URLs into sorted input files; also return ignored (unknown-format) paths.

    A path that does not exist, a directory without data files, or an explicitly named file of
    unknown format is an error naming it. Local files under ``exclude`` (the run's own output directory, when
    it lies inside an input directory) are never inputs, so a rerun does not read its own shards.
    """
    if not inputs:
        raise InputError("no INPUT given: pass JSONL/Parquet/WARC files, directories or globs")
    files: dict[str, InputFile] = {}
    ignored: list[str] = []
    for item in inputs:
        entries = _expand_url(item) if _is_url(item) else _expand_local(item)
        if exclude is not None:
            entries = [e for e in entries if _is_url(e[0]) or not Path(e[0]).is_relative_to(exclude)]
        data = 0
        for path, rel, parent in entries:
            fmt = detect_format(path)
            if fmt is None:
                if len(entries) == 1 and not Path(item).is_dir():
                    raise InputError(f"input {item}: unknown format; use .jsonl/.ndjson[.gz|.zst], .parquet or "
                                     ".warc[.gz]")
                ignored.append(path)
                continue
            data += 1
            files.setdefault(path, InputFile(path, fmt, _dir_source(parent), rel))
        if data == 0:
            inside = f" outside the output directory {exclude}" if exclude is not None else ""
            raise FileNotFoundError(
                f"no input files (.jsonl/.ndjson[.gz|.zst], .parquet, .warc[.gz]) found in {item}{inside}; "
                "check the path or glob"
            )
    return _unique_rels(sorted(files.values(), key=lambda f: f.path)), sorted(ignored)


def _unique_rels(files: list[InputFile]) -> list[InputFile]:
    """Make ``rel`` (the basis of fallback doc ids) relative to the inputs' common directory, so two inputs
    with the same file name (``a/x.jsonl``, ``b/x.jsonl``) never give the same ids."""
    local = [f.path for f in files if not _is_url(f.path)]
    if len(local) < 2:
        return files
    common = os.path.commonpath([os.path.dirname(p) for p in local])
    return [InputFile(f.path, f.fmt, f.dir_source, os.path.relpath(f.path, common)) if not _is_url(f.path) else f
            for f in files]


# ---------------------------------------------------------------------------------------------- records


def _record_from_obj(obj: Any, where: str, f: InputFile, idx: int, text_key: str, max_chars: int,
                     default_source: str | None) -> Record | Problem:
    if not isinstance(obj, dict):
        return Problem("not_object", where, f"JSON {type(obj).__name__}, expected an object")
    text = obj.get(text_key)
    if text is None:
        return Problem("missing_text", where, f"no {text_key!r} field")
    if not isinstance(text, str):
        return Problem("text_not_string", where, f"{text_key!r} is {type(text).__name__}")
    if len(text) > max_chars:
        return Problem("too_large", where, f"{len(text)} chars > [read] max_doc_chars={max_chars}")
    rid = obj.get("id")
    doc_id = str(rid) if isinstance(rid, (str, int)) and not isinstance(rid, bool) and str(rid) else f"{f.rel}:{idx}"
    src = obj.get("source")
    try:
        source = clean_source(src) if isinstance(src, str) and src.strip() else (default_source or f.dir_source)
    except ValueError as e:
        return Problem("bad_source", where, str(e))
    url = obj.get("url") if isinstance(obj.get("url"), str) else None
    path = obj.get("path") if isinstance(obj.get("path"), str) else f.rel
    return Record(text, doc_id, source, url, path)


@contextlib.contextmanager
def open_binary(path: str) -> Iterator[Any]:
    """A line-iterable binary stream of a (possibly .gz/.zst compressed) local file or fsspec URL."""
    import fsspec

    with fsspec.open(path, "rb") as raw:
        low = path.lower()
        if low.endswith(".gz"):
            with gzip.GzipFile(fileobj=raw) as fh:
                yield fh
        elif low.endswith(".zst"):
            yield _zstd_lines(raw)
        else:
            yield raw


def _zstd_lines(raw: Any, chunk: int = 1 << 20) -> Iterator[bytes]:
    """Lines of a (multi-frame) zstd stream; raises EOFError if the last frame is cut short.

    zstandard's stream_reader silently returns nothing for a truncated frame, which would lose records
    without counting them.
    """
    import zstandard

    dobj, fed, buf = zstandard.ZstdDecompressor().decompressobj(), False, b""
    while data := raw.read(chunk):
        while data:
            buf += dobj.decompress(data)
            fed, data = True, b""
            if dobj.eof:  # frame finished; the next frame (if any) starts in unused_data
                data = dobj.unused_data
                dobj, fed = zstandard.ZstdDecompressor().decompressobj(), False
        *lines, buf = buf.split(b"\n")
        for line in lines:
            yield line + b"\n"
    if buf:
        yield buf
    if fed:
        raise EOFError("zstd stream ends in the middle of a frame (truncated file)")


def iter_jsonl(f: InputFile, text_key: str, max_chars: int, default_source: str | None
               ) -> Iterator[Record | Problem]:
    """Lines are decoded one by one, so a bad byte costs one line and the lines after it are kept."""
    import orjson

    lineno = 0
    try:
        with open_binary(f.path) as fh:
            for lineno, raw in enumerate(fh, 1):
                if not raw.strip():
                    continue
                where = f"{f.path}:{lineno}"
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    yield Problem("invalid_utf8", where, str(e))
                    continue
                try:
                    obj = orjson.loads(line)
                except orjson.JSONDecodeError as e:
                    yield Problem("bad_json", where, str(e))
                    continue
                yield _record_from_obj(obj, where, f, lineno, text_key, max_chars, default_source)
    except Exception as e:  # truncated .gz (EOFError), corrupt zstd, I/O errors: the rest of the file is lost
        yield Problem("unreadable_file", f"{f.path}:{lineno + 1}", f"{type(e).__name__}: {e}")


def iter_parquet(f: InputFile, text_key: str, max_chars: int, default_source: str | None
                 ) -> Iterator[Record | Problem]:
    import fsspec
    import pyarrow.parquet as pq

    row = 0
    try:
        with fsspec.open(f.path, "rb") as fh:
            pf = pq.ParquetFile(fh)
            names = set(pf.schema_arrow.names)
            if text_key not in names:
                yield Problem("missing_text", f.path, f"no {text_key!r} column", count=max(pf.metadata.num_rows, 1))
                return
            cols = [c for c in (text_key, "id", "source", "url", "path") if c in names]
            for batch in pf.iter_batches(batch_size=1024, columns=cols):
                for obj in batch.to_pylist():
                    yield _record_from_obj(obj, f"{f.path}:row {row}", f, row, text_key, max_chars, default_source)
                    row += 1
    except Exception as e:  # not a Parquet file, bad footer, corrupt page
        yield Problem("corrupt_parquet", f"{f.path}:row {row}", f"{type(e).__name__}: {e}")


def _decode_html(payload: bytes, content_type: str | None) -> str | None:
    charset = "utf-8"
    if content_type and "charset=" in content_type:
        charset = content_type.split("charset=", 1)[1].split(";")[0].strip().strip("\"'") or "utf-8"
    for enc in dict.fromkeys((charset, "utf-8")):
        try:
            return payload.decode(enc)
        except (UnicodeDecodeError, LookupError):
            continue
    return None


def iter_warc(f: InputFile, text_key: str, max_chars: int, default_source: str | None
              ) -> Iterator[Record | Problem]:
    """HTML responses (and WET conversions) → text with trafilatura, as datatrove's WARC pipeline does."""
    import fsspec
    import trafilatura
    from warcio.archiveiterator import ArchiveIterator

    idx = 0
    try:
        with fsspec.open(f.path, "rb") as fh:
            for idx, rec in enumerate(ArchiveIterator(fh)):
                if rec.rec_type not in ("response", "conversion"):
                    continue  # requests, warcinfo, metadata: not documents
                where = f"{f.path}:record {idx}"
                url = rec.rec_headers.get_header("WARC-Target-URI")
                ctype = rec.http_headers.get_header("Content-Type") if rec.http_headers else "text/plain"
                if rec.rec_type == "response" and ctype and "html" not in ctype.lower():
                    yield Problem("not_html", where, ctype)
                    continue
                payload = rec.content_stream().read()
                missing = getattr(rec.raw_stream, "limit", 0)  # bytes of Content-Length the file never had
                if missing > 0:  # an uncompressed .warc cut mid-record: warcio returns the part silently
                    yield Problem("truncated_warc", where, f"record cut: {missing} of its {rec.length} bytes missing")
                    continue
                text = _decode_html(payload, ctype)
                if text is None:
                    yield Problem("undecodable", where, f"charset of {ctype!r}")
                    continue
                if rec.rec_type == "response":
                    text = trafilatura.extract(text, favor_precision=True, include_images=False,
                                               deduplicate=True) or ""
                rid = rec.rec_headers.get_header("WARC-Record-ID") or f"{f.rel}:{idx}"
                yield _record_from_obj({text_key: text, "id": rid.strip("<>"), "url": url}, where, f, idx,
                                       text_key, max_chars, default_source)
    except Exception as e:
        yield Problem("corrupt_warc", f"{f.path}:record {idx + 1}", f"{type(e).__name__}: {e}")


READERS = {"jsonl": iter_jsonl, "parquet": iter_parquet, "warc": iter_warc}


def iter_file(f: InputFile, text_key: str = "text", max_chars: int = 5_000_000,
              default_source: str | None = None) -> Iterator[Record | Problem]:
    """Every record of one input file, as a :class:`Record` or a counted :class:`Problem`."""
    return READERS[f.fmt](f, text_key, max_chars, default_source)


# Files `foresight tokenizer train` reads: JSONL records (JSONL_SUFFIXES above) or plain text.
TEXT_SUFFIXES = (".txt", ".txt.gz")


def is_training_file(path: str | Path) -> bool:
    """Files a tokenizer trains on: JSONL records (``text`` field) or plain text; other files are skipped."""
    name = str(path).lower()
    return name.endswith(JSONL_SUFFIXES) or name.endswith(TEXT_SUFFIXES)


def iter_texts_from_files(paths: Iterable[str | Path], text_key: str = "text",
                          skipped: dict[str, int] | None = None) -> Iterator[str]:
    """Texts of JSONL(.gz/.zst) or plain-text files, in sorted path order (so training is deterministic).

    Lines that are not JSON objects with a string ``text_key`` are counted in ``skipped[path]``.
    """
    import json

    from fsspec import open as fsopen

    for p in sorted(str(x) for x in paths):
        with fsopen(p, "rt", encoding="utf-8", errors="replace", compression="infer") as f:
            if not p.lower().endswith(JSONL_SUFFIXES):
                yield f.read()
                continue
            for line in f:
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    obj = None
                if isinstance(obj, dict) and isinstance(obj.get(text_key), str):
                    yield obj[text_key]
                elif skipped is not None:
                    skipped[p] = skipped.get(p, 0) + 1
