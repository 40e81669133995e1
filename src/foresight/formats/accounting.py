"""The document accounting of a curate run: read = kept + Σ dropped + Σ errored (docs/architecture.md).

Written per rank to ``stats/<rank>.json``, merged to ``stats/accounting.json`` and recorded in ``index.json``;
``pipeline.accounting`` fills it from datatrove's per-step stats."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from foresight.formats.atomic import write_json_atomic
from foresight.formats.errors import ForesightError, InputError
from foresight.formats.record import decode, encode, read_json

FIX = "rerun `foresight curate` to rewrite it"


class AccountingError(ForesightError, RuntimeError):
    """The invariant read = kept + Σ dropped + Σ errored does not hold: documents went missing."""


def _merged(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    out = dict(a)
    for reason, n in b.items():
        out[reason] = out.get(reason, 0) + n
    return dict(sorted(out.items()))


@dataclass(frozen=True)
class Accounting:
    """Document counts: ``dropped``/``errored`` map each reason to its count."""

    read: int = 0
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    errored: dict[str, int] = field(default_factory=dict)
    segments: int = 0
    tokens: int = 0

    def __add__(self, other: Accounting) -> Accounting:
        return Accounting(self.read + other.read, self.kept + other.kept, _merged(self.dropped, other.dropped),
                          _merged(self.errored, other.errored), self.segments + other.segments,
                          self.tokens + other.tokens)

    def bump(self, **counts: int) -> Accounting:
        """These counts added to the plain (non-reason) fields."""
        return replace(self, **{k: getattr(self, k) + n for k, n in counts.items()})

    def balance(self) -> int:
        """read − (kept + Σ dropped + Σ errored); zero when nothing was lost or double counted."""
        return self.read - self.kept - sum(self.dropped.values()) - sum(self.errored.values())

    def check(self, what: str = "run") -> None:
        """Fail loudly if documents were lost or double counted."""
        diff = self.balance()
        if diff != 0:
            raise AccountingError(
                f"accounting invariant violated for {what}: read={self.read} but kept={self.kept} + "
                f"dropped={sum(self.dropped.values())} + errored={sum(self.errored.values())} "
                f"differs by {diff}; this is a pipeline bug — please report it with the stats/ directory"
            )

    def summary_rows(self) -> list[tuple[str, int]]:
        """(label, count) rows for a summary table."""
        rows = [("read", self.read), ("kept", self.kept)]
        rows += [(f"dropped: {r}", n) for r, n in sorted(self.dropped.items())]
        rows += [(f"errored: {r}", n) for r, n in sorted(self.errored.items())]
        rows += [("segments", self.segments), ("tokens", self.tokens)]
        return rows

    def to_dict(self) -> dict[str, object]:
        return encode(self)

    @classmethod
    def from_dict(cls, raw: object, where: object, error: type[Exception] = InputError) -> Accounting:
        return decode(cls, raw, where, error, FIX)

    @classmethod
    def load(cls, path: str | Path) -> Accounting:
        """``stats/accounting.json`` (or a rank's ``stats/<rank>.json``), checked key by key."""
        return cls.from_dict(read_json(path, InputError, FIX), path)

    def write(self, path: str | Path) -> Path:
        write_json_atomic(path, self.to_dict())
        return Path(path)
