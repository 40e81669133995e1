"""Visual-knowledge multiple choice: object colours, shapes, relative sizes, materials, spatial relations and
parts (``visual_knowledge.jsonl``, 229 hand-written items, four options, answer positions balanced).

Each option is scored by its log-likelihood as the continuation of ``"Question: …\\nAnswer:"``, divided by the
option's UTF-8 byte length (lm-eval's ``acc_norm`` convention; independent of the tokenizer), and the best
option is the model's answer. Reports accuracy, chance (1 / options) and accuracy per category.
"""

from __future__ import annotations

import json
from collections import defaultdict
from importlib import resources
from pathlib import Path
from typing import Any

from foresight.formats.errors import InputError
from foresight.trainer.probes.features import LoadedModel, continuation_logprobs, require_causal

PROMPT = "Question: {question}\nAnswer:"


def default_items_path() -> Path:
    return Path(str(resources.files("foresight.trainer.probes") / "visual_knowledge.jsonl"))


def load_items(path: str | Path | None = None) -> list[dict[str, Any]]:
    """Read and validate the question file; errors name the line and the fix."""
    path = Path(path) if path else default_items_path()
    items = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"{path}:{lineno}: not valid JSON ({e})") from e
        opts, ans = item.get("options"), item.get("answer")
        if not isinstance(item.get("question"), str) or not isinstance(opts, list) or len(opts) < 2:
            raise InputError(f"{path}:{lineno}: need 'question' (string) and 'options' (list of ≥ 2 strings)")
        if not isinstance(ans, int) or not 0 <= ans < len(opts):
            raise InputError(f"{path}:{lineno}: 'answer' must be an option index in [0, {len(opts) - 1}]")
        item.setdefault("category", "all")
        items.append(item)
    if not items:
        raise InputError(f"{path} holds no questions")
    return items


def score_items(lm: LoadedModel, items: list[dict[str, Any]]) -> list[int]:
    """The chosen option index per item (highest byte-normalised log-likelihood)."""
    require_causal(lm, "visual-knowledge")
    prompts, conts, owners = [], [], []
    for i, item in enumerate(items):
        for opt in item["options"]:
            prompts.append(PROMPT.format(question=item["question"]))
            conts.append(" " + opt)
            owners.append(i)
    logps = continuation_logprobs(lm, prompts, conts)
    best: dict[int, tuple[float, int]] = {}
    counters: dict[int, int] = defaultdict(int)
    for owner, cont, lp in zip(owners, conts, logps, strict=True):
        j = counters[owner]
        counters[owner] += 1
        score = lp / max(1, len(cont.encode("utf-8")))
        if owner not in best or score > best[owner][0]:
            best[owner] = (score, j)
    return [best[i][1] for i in range(len(items))]


def knowledge_probe(lm: LoadedModel, items_path: str | Path | None = None) -> dict[str, Any]:
    items = load_items(items_path)
    chosen = score_items(lm, items)
    per_cat: dict[str, list[bool]] = defaultdict(list)
    for item, c in zip(items, chosen, strict=True):
        per_cat[item["category"]].append(c == item["answer"])
    correct = [c == it["answer"] for it, c in zip(items, chosen, strict=True)]
    out: dict[str, Any] = {"visual_knowledge_acc": sum(correct) / len(items),
                           "visual_knowledge_chance": sum(1 / len(it["options"]) for it in items) / len(items),
                           "visual_knowledge_n": len(items)}
    for cat, hits in sorted(per_cat.items()):
        out[f"visual_knowledge_acc_{cat}"] = sum(hits) / len(hits)
    return out
