"""The LLM teacher: any OpenAI-compatible chat-completions endpoint (vLLM, SGLang, llama.cpp, a hosted API).

Requests run concurrently up to a bound, retry with exponential back-off on timeouts/5xx/429, and every
valid answer is cached on disk by a hash of (model, prompt version, text), so a rerun costs nothing. An
answer that is not the JSON we asked for is counted as malformed and asked again; after the retries the
segment is counted as errored (with its id) — a label is never guessed.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from foresight.formats.atomic import replacing
from foresight.formats.errors import InputError, SetupError
from foresight.formats.taxonomy import LABEL_NAMES, LABELS

PROMPT_VERSION = "lsbs-six-v1"
SYSTEM_PROMPT = (
    "You label pre-training text segments with the LSBS taxonomy. A segment can have any number of labels, "
    "or none. Definitions:\n"
    + "\n".join(f"- {lab.name}: {lab.definition}" for lab in LABELS)
    + "\nAnswer with one JSON object and nothing else, with exactly these keys and 0 or 1 values: "
    + json.dumps({name: 0 for name in LABEL_NAMES})
)
_JSON_OBJECT = re.compile(r"\{.*\}", re.S)


class MalformedAnswer(ValueError):
    """The endpoint answered, but not with the JSON object we asked for."""


def parse_answer(content: str) -> list[int]:
    """The six 0/1 labels from a model answer (a JSON object, optionally inside a ```json fence)."""
    m = _JSON_OBJECT.search(content or "")
    if not m:
        raise MalformedAnswer(f"no JSON object in answer {content[:80]!r}")
    try:
        obj = json.loads(m.group(0))
    except json.JSONDecodeError as e:
        raise MalformedAnswer(f"invalid JSON in answer: {e}") from None
    if not isinstance(obj, dict) or set(obj) != set(LABEL_NAMES):
        raise MalformedAnswer(f"answer keys {sorted(obj) if isinstance(obj, dict) else type(obj).__name__} "
                              f"are not the six labels")
    out = []
    for name in LABEL_NAMES:
        v = obj[name]
        if isinstance(v, bool) or (isinstance(v, int) and v in (0, 1)):
            out.append(int(v))
        else:
            raise MalformedAnswer(f"label {name} has value {v!r}; expected 0 or 1")
    return out


@dataclass
class LLMStats:
    requests: int = 0
    cached: int = 0
    retries: int = 0
    malformed: int = 0
    errored: list[str] = field(default_factory=list)  # segment ids that failed after all retries
    empty: int = 0


class LLMTeacher:
    kind = "llm"

    def __init__(self, endpoint: str, model: str, api_key_env: str = "OPENAI_API_KEY",
                 cache_dir: str | Path | None = None, concurrency: int = 8, max_retries: int = 4,
                 timeout_s: float = 60.0, backoff_s: float = 1.0, max_chars: int = 6000) -> None:
        if not endpoint.startswith(("http://", "https://")):
            raise InputError(f"endpoint {endpoint!r} must be an http(s) URL, e.g. http://localhost:8000/v1")
        self.url = endpoint.rstrip("/") + ("" if endpoint.rstrip("/").endswith("/chat/completions")
                                           else "/chat/completions")
        self.model = model
        self.api_key = os.environ.get(api_key_env, "")
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.concurrency = max(1, concurrency)
        self.max_retries = max_retries
        self.timeout_s = timeout_s
        self.backoff_s = backoff_s
        self.max_chars = max_chars  # long segments are cut before sending (counted in stats)
        self.truncated = 0
        self.stats = LLMStats()
        self._lock = threading.Lock()

    def cache_key(self, text: str) -> str:
        return hashlib.sha256(f"{self.model}\0{PROMPT_VERSION}\0{text}".encode()).hexdigest()

    def _cache_path(self, key: str) -> Path | None:
        return self.cache_dir / key[:2] / f"{key}.json" if self.cache_dir else None

    def _cached(self, key: str) -> list[int] | None:
        path = self._cache_path(key)
        if path is None or not path.exists():
            return None
        try:
            return parse_answer(path.read_text())
        except MalformedAnswer:
            return None  # a damaged cache entry is simply asked again

    def _store(self, key: str, labels: list[int]) -> None:
        path = self._cache_path(key)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        with replacing(path, suffix=f".tmp{threading.get_ident()}") as tmp:  # threads may store the same key
            tmp.write_text(json.dumps(dict(zip(LABEL_NAMES, labels, strict=True))))

    def _request(self, text: str) -> str:
        body = json.dumps({"model": self.model, "temperature": 0, "messages": [
            {"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": text}]}).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
            payload = json.loads(resp.read().decode())
        try:
            return payload["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise MalformedAnswer(f"response has no choices[0].message.content: {str(payload)[:80]}") from None

    def label_one(self, seg_id: str, text: str) -> list[int] | None:
        """Labels of one segment, or None after ``max_retries`` failures (recorded in ``stats.errored``)."""
        if not text.strip():
            with self._lock:
                self.stats.empty += 1
            return [0] * len(LABEL_NAMES)
        if len(text) > self.max_chars:
            with self._lock:
                self.truncated += 1
            text = text[: self.max_chars]
        key = self.cache_key(text)
        hit = self._cached(key)
        if hit is not None:
            with self._lock:
                self.stats.cached += 1
            return hit
        for attempt in range(self.max_retries + 1):
            if attempt:
                with self._lock:
                    self.stats.retries += 1
                time.sleep(self.backoff_s * 2 ** (attempt - 1) * (0.5 + random.random()))
            try:
                with self._lock:
                    self.stats.requests += 1
                labels = parse_answer(self._request(text))
            except MalformedAnswer:
                with self._lock:
                    self.stats.malformed += 1
                continue
            except urllib.error.HTTPError as e:
                if e.code not in (408, 409, 429) and e.code < 500:
                    break  # a client error (bad model name, bad key) will not fix itself
                continue
            except (urllib.error.URLError, TimeoutError, ConnectionError, json.JSONDecodeError, OSError):
                continue
            self._store(key, labels)
            return labels
        with self._lock:
            self.stats.errored.append(seg_id)
        return None

    def label(self, ids: list[str], texts: list[str]) -> list[list[int] | None]:
        """Labels for every segment (None for errored ones), in input order, ``concurrency`` at a time."""
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(self.label_one, ids, texts))

    def predict_scores(self, texts: list[str]) -> np.ndarray:
        """Interface of the other classifiers; errored segments raise, since a score cannot be guessed."""
        ids = [f"#{i}" for i in range(len(texts))]
        out = self.label(ids, texts)
        if self.stats.errored:
            raise SetupError(f"LLM teacher failed on segments {self.stats.errored[:5]} after retries")
        return np.asarray(out, dtype=np.float32).reshape(len(texts), len(LABEL_NAMES))

    @property
    def thresholds(self) -> dict[str, float]:
        return {n: 0.5 for n in LABEL_NAMES}

    def info(self) -> dict[str, str | None]:
        return {"kind": "llm", "id": f"{self.model}@{self.url}",
                "sha256": hashlib.sha256(SYSTEM_PROMPT.encode()).hexdigest()}
