"""The rules teacher: small, named labelling functions whose votes are kept.

Each labelling function (LF) looks at one kind of evidence and votes for one label with a strength in
(0, 1], or abstains (0). A label's score is the noisy-OR of its votes, ``1 - prod(1 - v)``, so one strong
vote or several weak ones pass the 0.5 threshold. ``explain(text)`` returns the votes so a user can see
why a segment got a label.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from foresight.formats.taxonomy import LABEL_NAMES

WORD = re.compile(r"[A-Za-z][a-z]+(?:-[a-z]+)?")


def _words(text: str) -> list[str]:
    return [w.lower() for w in WORD.findall(text)]


def _ramp(x: float, lo: float, hi: float) -> float:
    """0 below ``lo``, 1 at or above ``hi``, linear between: turns a count or density into a vote."""
    if x <= lo:
        return 0.0
    return min(1.0, (x - lo) / (hi - lo))


def _hits(words: list[str], vocab: frozenset[str]) -> int:
    return sum(1 for w in words if w in vocab)


def _vocab(s: str) -> frozenset[str]:
    return frozenset(s.split())


# ---- code -----------------------------------------------------------------------------------------
CODE_LINE = re.compile(
    r"(^\s*(def|class|import|from\s+\S+\s+import|return|if\s*\(|for\s*\(|while\s*\(|#include|public|private|"
    r"static|function|var|let|const|fn|impl|package|func)\b)|([;{}]\s*$)|(\w+\(.*\)\s*[:{;]?\s*$)|(=>|->|::|==|!=|\+=)"
)
CODE_WORDS = _vocab(
    "function functions variable variables compile compiler compiled runtime algorithm algorithms array arrays "
    "pointer pointers recursion recursive loop loops iterate iteration boolean integer string strings struct "
    "class classes method methods module modules parameter parameters argument arguments return returns "
    "syntax debug debugging bug exception stack queue hash api library libraries python java javascript rust "
    "sql query queries thread threads memory byte bytes bit bits binary database interface callback lambda "
    "github repository commit code coding program programs programming programmer software source execute")


def lf_code_syntax(text: str) -> float:
    """Share of non-empty lines that look like code (keywords at line start, braces, semicolons, calls)."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) < 2:
        return 0.0
    density = sum(1 for ln in lines if CODE_LINE.search(ln)) / len(lines)
    return _ramp(density, 0.15, 0.45)


def lf_code_fence(text: str) -> float:
    """Markdown code fences or inline code spans."""
    return 1.0 if "```" in text else _ramp(text.count("`") / 2, 2, 6)


def lf_code_vocabulary(text: str) -> float:
    """Programming vocabulary (function, compiler, recursion, …) per 100 words."""
    words = _words(text)
    return _ramp(100 * _hits(words, CODE_WORDS) / max(len(words), 1), 2.0, 6.0) if len(words) >= 8 else 0.0


# ---- math -----------------------------------------------------------------------------------------
LATEX = re.compile(r"\\(frac|sum|int|sqrt|alpha|beta|theta|lambda|sigma|mathbb|mathrm|leq|geq|cdot|begin\{|end\{|"
                   r"partial|infty|prod|lim|binom|pi\b)|\$[^$\n]{1,80}\$")
EQUATION = re.compile(r"(\b[a-zA-Z]\s*[=<>≤≥]\s*[-\d(a-zA-Z])|(\d\s*[+\-*/^×÷]\s*\d)|([a-z]\^\d)|([a-z]_\{?\d)|"
                      r"(\b\d+/\d+\b)|[∑∫√π≤≥≠∈∀∃]")
PROOF_WORDS = _vocab(
    "theorem lemma proof prove proves proved corollary proposition definition hence therefore thus suppose "
    "assume qed equation equations integral integrals derivative derivatives polynomial polynomials prime "
    "primes integer integers matrix matrices vector vectors function solve solution formula sum product "
    "divisible modulo congruent inequality converge converges convergence series sequence limit limits "
    "infinite finite axiom geometry algebra algebraic arithmetic calculus triangle angle angles radius "
    "theorem probability factorial logarithm exponent coefficient coefficients variable denominator "
    "numerator fraction fractions multiply multiplied divide divided equals satisfies induction")


def lf_latex(text: str) -> float:
    """LaTeX commands or $…$ spans."""
    return _ramp(len(LATEX.findall(text)), 0, 3)


def lf_equations(text: str) -> float:
    """Equation-like patterns (x = …, 3 + 4, a^2, x_1, fractions, math symbols) per 1000 characters."""
    return _ramp(1000 * len(EQUATION.findall(text)) / max(len(text), 200), 4.0, 15.0)


def lf_proof_vocabulary(text: str) -> float:
    """Proof and derivation vocabulary (theorem, lemma, hence, integral, …) per 100 words."""
    words = _words(text)
    return _ramp(100 * _hits(words, PROOF_WORDS) / max(len(words), 1), 2.0, 6.0) if len(words) >= 8 else 0.0


# ---- science --------------------------------------------------------------------------------------
SCIENCE_WORDS = _vocab(
    "cell cells protein proteins molecule molecules atom atoms electron electrons energy enzyme enzymes gene "
    "genes genetic dna rna species evolution hypothesis experiment experiments experimental observed "
    "observation data temperature pressure reaction reactions chemical chemistry physics physical biology "
    "biological particle particles mass velocity acceleration force forces gravity quantum wavelength "
    "frequency radiation organism organisms bacteria virus tissue metabolism neuron neurons photosynthesis "
    "oxygen carbon hydrogen nitrogen acid compound compounds concentration membrane mutation climate "
    "ecosystem sediment mineral magnetic electric voltage thermal entropy oxidation nucleus spectrum "
    "measured measurement measurements sample samples laboratory theory mechanism mechanisms receptor "
    "receptors hormone clinical patients disease infection immune")
CITATION = re.compile(r"(et al\.)|(\[\d+(?:[,–-]\s*\d+)*\])|(\([A-Z][a-z]+(?: et al\.)?,? (?:19|20)\d\d\))|"
                      r"(doi:|arXiv:)|(\bFig(?:ure)?\.? \d)")
CAUSAL = re.compile(r"\b(because|causes?|caused|leads? to|results? in|due to|in turn|which means|"
                    r"consequently|explains?|mechanism|so that)\b", re.I)


def lf_science_vocabulary(text: str) -> float:
    """Scientific vocabulary (cell, enzyme, particle, hypothesis, …) per 100 words."""
    words = _words(text)
    return _ramp(100 * _hits(words, SCIENCE_WORDS) / max(len(words), 1), 2.0, 7.0) if len(words) >= 8 else 0.0


def lf_citations(text: str) -> float:
    """Citations and figure references: et al., [12], (Smith, 2019), doi:, Fig. 3."""
    return _ramp(len(CITATION.findall(text)), 0, 3) * 0.6


def lf_causal_science(text: str) -> float:
    """Causal connectives in text that also uses scientific vocabulary (an explanation, not a story)."""
    words = _words(text)
    if _hits(words, SCIENCE_WORDS) < 3:
        return 0.0
    return _ramp(len(CAUSAL.findall(text)), 0, 3) * 0.6


# ---- visual ---------------------------------------------------------------------------------------
OBJECT_NOUNS = _vocab(
    "table chair door window wall floor roof house houses room bed lamp cup glass bottle plate bowl knife "
    "book books box bag hat coat dress shirt shoes boots ring sword shield car cars bus train ship boat "
    "bicycle road street bridge tower castle church garden tree trees flower flowers grass leaf leaves "
    "forest river lake sea ocean beach mountain mountains hill hills rock rocks stone sand snow sky sun moon "
    "star stars cloud clouds rain fire smoke dog dogs cat cats horse horses bird birds fish cow sheep "
    "man woman men women boy girl child children face eyes hair hand hands arm arms head feet legs "
    "apple bread cake fruit candle mirror painting picture statue flag map clock key rope basket "
    "village city town field fields valley island desert street market kitchen bedroom hall gate fence "
    "camera phone screen keyboard building buildings temple palace wagon carriage cart sword armor")
ACTION_WORDS = _vocab("walked walking ran running sat sitting stood standing held holding looked looking "
                      "climbed jumped carried wore wearing smiled waved danced painted opened closed threw")
COLOUR_WORDS = _vocab("red blue green yellow orange purple pink brown black white grey gray golden gold silver "
                      "crimson scarlet violet beige tan ivory turquoise bright dark pale colour color colors "
                      "colours coloured colored")
SHAPE_SIZE_WORDS = _vocab("round square rectangular circular oval triangular curved flat tall short tiny huge "
                          "large small enormous giant narrow wide thick thin long shaped shape shapes spherical")
TEXTURE_WORDS = _vocab("wooden wood metal metallic glass stone marble silk velvet leather cotton wool rough "
                       "smooth soft shiny glossy fluffy furry striped spotted polished rusty wrinkled muddy "
                       "transparent sparkling glittering dusty ornate")
SPATIAL = re.compile(r"\b(on top of|underneath|beneath|beside|next to|in front of|behind|above|below|between|"
                     r"across from|inside|outside of|on the (?:left|right)|to the (?:left|right)|around the|"
                     r"against the|along the|at the (?:top|bottom|edge|foot) of|surrounded by|leaning on|"
                     r"hanging from|on the (?:table|floor|wall|ground|shelf)|in the (?:corner|middle|centre|center))\b",
                     re.I)
PART_WHOLE = re.compile(r"\b(part of|made of|consists? of|composed of|covered (?:with|in)|its (?:handle|legs|"
                        r"wings|roof|walls|leaves|petals|branches|blade|wheels|door|tail)|the (?:handle|legs|wings|"
                        r"roof|petals|blade|wheels|tail|branches|trunk|lid|base) of)\b", re.I)


def lf_object_nouns(text: str) -> float:
    """Concrete, visible object nouns (table, river, horse, …) per 100 words."""
    words = _words(text)
    return _ramp(100 * _hits(words, OBJECT_NOUNS) / max(len(words), 1), 1.5, 5.0) if len(words) >= 8 else 0.0


def lf_visible_actions(text: str) -> float:
    """Visible physical actions (walked, held, climbed, …) alongside object nouns."""
    words = _words(text)
    if _hits(words, OBJECT_NOUNS) < 2:
        return 0.0
    return _ramp(_hits(words, ACTION_WORDS), 0, 3) * 0.6


def lf_colour_words(text: str) -> float:
    """Colour words (red, crimson, pale, …)."""
    return _ramp(_hits(_words(text), COLOUR_WORDS), 0, 3)


def lf_shape_size_texture(text: str) -> float:
    """Shape, size, texture and material words (round, tiny, wooden, velvet, …)."""
    words = _words(text)
    return _ramp(_hits(words, SHAPE_SIZE_WORDS) + _hits(words, TEXTURE_WORDS), 1, 5)


def lf_spatial_prepositions(text: str) -> float:
    """Spatial prepositional phrases (on top of, beside, in front of, …)."""
    return _ramp(len(SPATIAL.findall(text)), 0, 3)


def lf_part_whole(text: str) -> float:
    """Part-whole phrases (part of, made of, the handle of, …)."""
    return _ramp(len(PART_WHOLE.findall(text)), 0, 2) * 0.7


@dataclass(frozen=True)
class LabellingFunction:
    name: str
    label: str
    fn: Callable[[str], float]


LABELLING_FUNCTIONS: tuple[LabellingFunction, ...] = (
    LabellingFunction("code_syntax", "code_reasoning", lf_code_syntax),
    LabellingFunction("code_fence", "code_reasoning", lf_code_fence),
    LabellingFunction("code_vocabulary", "code_reasoning", lf_code_vocabulary),
    LabellingFunction("latex", "math_reasoning", lf_latex),
    LabellingFunction("equations", "math_reasoning", lf_equations),
    LabellingFunction("proof_vocabulary", "math_reasoning", lf_proof_vocabulary),
    LabellingFunction("science_vocabulary", "science_reasoning", lf_science_vocabulary),
    LabellingFunction("citations", "science_reasoning", lf_citations),
    LabellingFunction("causal_science", "science_reasoning", lf_causal_science),
    LabellingFunction("object_nouns", "visual_concept", lf_object_nouns),
    LabellingFunction("visible_actions", "visual_concept", lf_visible_actions),
    LabellingFunction("colour_words", "visual_attribute", lf_colour_words),
    LabellingFunction("shape_size_texture", "visual_attribute", lf_shape_size_texture),
    LabellingFunction("spatial_prepositions", "visual_relationship", lf_spatial_prepositions),
    LabellingFunction("part_whole", "visual_relationship", lf_part_whole),
)
_LF_BY_LABEL = {name: [lf for lf in LABELLING_FUNCTIONS if lf.label == name] for name in LABEL_NAMES}
assert set(_LF_BY_LABEL) == set(LABEL_NAMES) and all(_LF_BY_LABEL.values()), "every label needs a labelling function"


def explain(text: str) -> dict[str, float]:
    """The non-zero votes of every labelling function on ``text``: ``{lf_name: strength}``."""
    if not text.strip():
        return {}
    votes = {lf.name: round(float(lf.fn(text)), 4) for lf in LABELLING_FUNCTIONS}
    return {k: v for k, v in votes.items() if v > 0}


def scores_from_votes(votes: dict[str, float]) -> np.ndarray:
    """Noisy-OR of the votes per label, in taxonomy order."""
    out = np.zeros(len(LABEL_NAMES), dtype=np.float32)
    for i, name in enumerate(LABEL_NAMES):
        miss = 1.0
        for lf in _LF_BY_LABEL[name]:
            miss *= 1.0 - votes.get(lf.name, 0.0)
        out[i] = 1.0 - miss
    return out


class RulesTeacher:
    """Scores texts with the labelling functions; same interface as the trained classifiers."""

    kind = "rules"

    def __init__(self) -> None:
        self.thresholds = {name: 0.5 for name in LABEL_NAMES}
        self.stats: dict[str, int] = {"empty": 0, "truncated": 0}

    def predict_scores(self, texts: list[str]) -> np.ndarray:
        rows = []
        for t in texts:
            if not t.strip():
                self.stats["empty"] += 1
            rows.append(scores_from_votes(explain(t)))
        return np.stack(rows) if rows else np.zeros((0, len(LABEL_NAMES)), dtype=np.float32)

    def info(self) -> dict[str, str | None]:
        src = Path(__file__).read_bytes()
        return {"kind": "rules", "id": "foresight-rules-v1", "sha256": hashlib.sha256(src).hexdigest()}
