"""The LSBS six-label taxonomy (docs/classifiers.md). Adding a label is one entry in ``LABELS``."""

from __future__ import annotations

from dataclasses import dataclass

from foresight.formats.errors import InputError


@dataclass(frozen=True)
class Label:
    name: str
    group: str  # "visual" or "reasoning": drives the derived boolean columns
    definition: str
    threshold: float = 0.5


LABELS: tuple[Label, ...] = (
    Label("visual_concept", "visual",
          "Names or describes concrete, visible things: objects, people, places, actions or scenes."),
    Label("visual_attribute", "visual",
          "Describes how something looks: colour, size, shape, texture, material or style."),
    Label("visual_relationship", "visual",
          "States spatial or part-whole relations between visible things (on, under, beside, part of)."),
    Label("code_reasoning", "reasoning",
          "Source code or step-by-step reasoning about programs, algorithms or their behaviour."),
    Label("math_reasoning", "reasoning",
          "Mathematical statements, equations, derivations or proofs worked through step by step."),
    Label("science_reasoning", "reasoning",
          "Scientific explanation or argument: mechanisms, experiments, evidence, causal inference."),
)

LABEL_NAMES: tuple[str, ...] = tuple(lab.name for lab in LABELS)
GROUPS: tuple[str, ...] = ("reasoning", "visual")
THRESHOLDS: dict[str, float] = {lab.name: lab.threshold for lab in LABELS}


def labels_in(group: str) -> tuple[str, ...]:
    """Label names belonging to a derived group ("reasoning" or "visual")."""
    if group not in GROUPS:
        raise ValueError(f"unknown group {group!r}; expected one of {GROUPS}")
    return tuple(lab.name for lab in LABELS if lab.group == group)


def score_column(label: str) -> str:
    return f"score_{label}"


def derive_flags(labels: list[str] | tuple[str, ...]) -> dict[str, bool]:
    """The derived boolean columns of a label set: ``reasoning`` / ``visual`` (any label of the group), then one
    column per label (named as the label) in taxonomy order."""
    present = set(labels)
    flags = {g: any(name in present for name in labels_in(g)) for g in GROUPS}
    flags.update((name, name in present) for name in LABEL_NAMES)
    return flags


def label_vector(labels: list[str] | tuple[str, ...] | None) -> list[int]:
    """0/1 per label in taxonomy order (None = no labels)."""
    present = set(labels or ())
    return [int(name in present) for name in LABEL_NAMES]


def labels_from_scores(scores: dict[str, float], thresholds: dict[str, float] | None = None) -> list[str]:
    """Labels whose score reaches its threshold, in taxonomy order."""
    th = THRESHOLDS if thresholds is None else thresholds
    return [name for name in LABEL_NAMES if scores.get(name, 0.0) >= th[name]]


def check_labels(names: list[str] | tuple[str, ...]) -> None:
    """Refuse a label list (e.g. from a saved model) that does not match the taxonomy."""
    if tuple(names) != LABEL_NAMES:
        missing = sorted(set(LABEL_NAMES) - set(names))
        extra = sorted(set(names) - set(LABEL_NAMES))
        raise InputError(
            f"label list does not match the taxonomy (missing {missing}, unexpected {extra}, "
            f"or a different order); expected {list(LABEL_NAMES)}"
        )
