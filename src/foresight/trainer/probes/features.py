"""Loading local HF models (our run dirs or any user path) and reading features/log-likelihoods from them.

Never touches the network: every ``from_pretrained`` is ``local_files_only=True`` on a directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from foresight.formats.errors import InputError
from foresight.trainer.probes.alignment import mean_pool


class ProbeError(InputError):
    """A model or input a probe cannot use; the message says why and what to pass instead."""


@dataclass
class LoadedModel:
    path: Path
    model: torch.nn.Module
    tokenizer: object
    causal: bool
    device: torch.device

    @property
    def max_length(self) -> int:
        n = getattr(self.model.config, "max_position_embeddings", None) or 512
        return int(min(n, 2048))


def _is_causal(config) -> bool:
    archs = getattr(config, "architectures", None) or []
    return any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs) or bool(getattr(config, "is_decoder", False))


def load_model(path: str | Path, device: str = "cpu", random_init: bool = False, seed: int = 0) -> LoadedModel:
    """A local causal LM (AutoModelForCausalLM) or encoder (AutoModel) with its tokenizer, in eval mode.

    ``random_init`` keeps the architecture and tokenizer but draws fresh weights (seeded): the untrained
    baseline PRH compares against.
    """
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()
    path = Path(path)
    if not (path / "config.json").is_file():
        raise ProbeError(f"{path} is not a model directory (no config.json); pass a run dir from `foresight train` "
                         "or a local Hugging Face model directory")
    config = AutoConfig.from_pretrained(path, local_files_only=True)
    causal = _is_causal(config)
    cls = AutoModelForCausalLM if causal else AutoModel
    try:
        if random_init:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model = cls.from_config(config)
        else:
            model = cls.from_pretrained(path, local_files_only=True, dtype=torch.float32)
        tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        raise ProbeError(f"cannot load {path} as a transformers model/tokenizer: {str(e).splitlines()[0]}") from e
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token or tok.unk_token
    tok.padding_side = "right"
    dev = torch.device(device if device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    return LoadedModel(path, model.to(dev).eval(), tok, causal, dev)


def _encode(lm: LoadedModel, texts: list[str]) -> dict[str, torch.Tensor]:
    enc = lm.tokenizer(texts, return_tensors="pt", padding=True, truncation=True, max_length=lm.max_length)
    return {k: v.to(lm.device) for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}


@torch.no_grad()
def layer_features(lm: LoadedModel, texts: list[str], batch_size: int = 32) -> torch.Tensor:
    """(n, layers+1, d): each layer's hidden states (embeddings included) mean-pooled over the attention mask."""
    out: list[torch.Tensor] = []
    for i in range(0, len(texts), batch_size):
        enc = _encode(lm, texts[i:i + batch_size])
        res = lm.model(**enc, output_hidden_states=True)
        hidden = getattr(res, "hidden_states", None)
        if hidden is None:
            raise ProbeError(f"{lm.path}: the model returns no hidden states (output_hidden_states unsupported by "
                             f"{type(lm.model).__name__}); use a transformers causal LM or encoder")
        mask = enc["attention_mask"]
        out.append(torch.stack([mean_pool(h.float(), mask) for h in hidden], dim=1).cpu())
    return torch.cat(out)


def require_causal(lm: LoadedModel, probe: str) -> None:
    if not lm.causal:
        raise ProbeError(f"the {probe} probe needs a causal LM, but {lm.path} is an encoder "
                         f"({type(lm.model).__name__}); run the color/alignment probes on it instead")


def _start_id(tok) -> int:
    for t in (tok.bos_token_id, tok.eos_token_id):
        if t is not None:
            return int(t)
    raise ProbeError("the tokenizer has neither a BOS nor an EOS token to start a sequence with")


@torch.no_grad()
def continuation_logprobs(lm: LoadedModel, prompts: list[str], continuations: list[str],
                          batch_size: int = 16) -> list[float]:
    """Sum of log p(continuation | start token + prompt) in nats, per pair."""
    require_causal(lm, "log-likelihood")
    tok, start = lm.tokenizer, _start_id(lm.tokenizer)
    seqs: list[tuple[list[int], int]] = []
    for p, c in zip(prompts, continuations, strict=True):
        pi = tok(p, add_special_tokens=False).input_ids
        ci = tok(c, add_special_tokens=False).input_ids
        ids = ([start] + pi + ci)[-lm.max_length:]
        seqs.append((ids, min(len(ci), len(ids) - 1)))
    scores: list[float] = []
    for i in range(0, len(seqs), batch_size):
        chunk = seqs[i:i + batch_size]
        width = max(len(s) for s, _ in chunk)
        ids = torch.full((len(chunk), width), int(tok.pad_token_id), dtype=torch.long)
        for j, (s, _) in enumerate(chunk):
            ids[j, :len(s)] = torch.tensor(s)
        logp = torch.log_softmax(lm.model(input_ids=ids.to(lm.device)).logits.float(), dim=-1).cpu()
        for j, (s, n_c) in enumerate(chunk):
            pos = torch.arange(len(s) - n_c - 1, len(s) - 1)
            scores.append(float(logp[j, pos, torch.tensor(s[len(s) - n_c:])].sum()))
    return scores


@torch.no_grad()
def token_nll(lm: LoadedModel, ids: list[int]) -> tuple[float, int]:
    """Total NLL (nats) of ``ids`` after a start token, in windows of the model's context; and the target count."""
    require_causal(lm, "bits-per-byte")
    seq = torch.tensor([_start_id(lm.tokenizer)] + ids, dtype=torch.long)
    ctx, total = lm.max_length, 0.0
    for a in range(0, len(seq) - 1, ctx):
        window = seq[a:a + ctx + 1].unsqueeze(0).to(lm.device)
        logits = lm.model(input_ids=window[:, :-1]).logits.float()
        total += float(torch.nn.functional.cross_entropy(logits[0], window[0, 1:], reduction="sum"))
    return total, len(ids)
