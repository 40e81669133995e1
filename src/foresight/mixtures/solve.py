"""Token targets per pool: exact largest-remainder apportionment (docs/mixtures.md) and feasibility."""

from __future__ import annotations

import hashlib
import math
from fractions import Fraction

from foresight.formats.errors import InputError


class InfeasibleError(InputError):
    """A pool cannot supply its target even with the allowed repetition."""


def tie_key(seed: int, name: str) -> bytes:
    """Seeded tie-break between pools with equal remainders (sha256, so it is stable everywhere)."""
    return hashlib.sha256(f"{seed}:{name}".encode()).digest()


def apportion(weights: list[Fraction], names: list[str], total: int, seed: int) -> list[int]:
    """Largest-remainder targets: ``floor(w·total)`` each, then one more token to the largest remainders.

    ``weights`` must be exact and sum to 1, so the targets sum to ``total`` exactly. Equal remainders are
    ordered by :func:`tie_key`, so the result depends on the seed and never on dict or file order.
    """
    if sum(weights, Fraction(0)) != 1:
        raise ValueError(f"weights must sum to exactly 1, got {float(sum(weights))}")
    quotas = [w * total for w in weights]
    floors = [math.floor(q) for q in quotas]
    left = total - sum(floors)
    ranked = sorted(range(len(weights)), key=lambda i: (-(quotas[i] - floors[i]), tie_key(seed, names[i])))
    for i in ranked[:left]:
        floors[i] += 1
    return floors


def capacity(available: int, max_repetition: Fraction) -> int:
    """Most tokens a pool can supply: ``floor(available · max_repetition)``."""
    return math.floor(available * max_repetition)


MAX_ENTRIES = 2**31 - 1  # manifest rows: epochs and positions are int32


def check_feasible(names: list[str], targets: list[int], available: list[int], reps: list[Fraction],
                   segments: list[int] | None = None) -> None:
    """Raise naming the first pool whose target exceeds what it holds (times its repetition), or (given its
    ``segments``) would need more passes over them than a manifest can hold entries."""
    for i, (name, need, have, rep) in enumerate(zip(names, targets, available, reps, strict=True)):
        if segments is not None and have > 0:
            entries = -(-need // have) * segments[i]  # whole passes, rounded up
            if entries > MAX_ENTRIES:
                raise InfeasibleError(f"pool {name!r} needs {_big(need)} tokens: {_big(-(-need // have))} passes over "
                                      f"its {have:,} tokens ({segments[i]:,} segments), {_big(entries)} manifest "
                                      f"entries, more than {MAX_ENTRIES:,}; lower total_tokens or max_repetition")
        cap = capacity(have, rep)
        if need > cap:
            rep_note = f" x max_repetition {float(rep):g} = {cap}" if rep != 1 else ""  # rep is a finite float
            hint = ("raise max_repetition for it, lower total_tokens or its weight"
                    if have else "its expression matches no (non-excluded) segment")
            raise InfeasibleError(f"pool {name!r} needs {need} tokens but only {have} are available{rep_note}; "
                                  f"{hint}")


def _big(n: int) -> str:
    """An integer for a message: its digits, or its order of magnitude when it has too many to read (a float
    would overflow past 1e308)."""
    return f"{n:,}" if n < 10**15 else f"about 10^{len(str(n)) - 1}"


def max_total(weights: list[Fraction], names: list[str], available: list[int], reps: list[Fraction],
              seed: int) -> int:
    """Largest ``total_tokens`` for which every pool is feasible (``total_tokens = "max"``)."""
    bounds = [math.floor(capacity(a, r) / w) for w, a, r in zip(weights, available, reps, strict=True) if w > 0]
    total = min(bounds) if bounds else 0
    # Largest remainder may hand a pool one token above floor(w·total): step down until it fits.
    while total > 0:
        targets = apportion(weights, names, total, seed)
        if all(t <= capacity(a, r) for t, a, r in zip(targets, available, reps, strict=True)):
            return total
        total -= 1
    empty = [n for n, a, w in zip(names, available, weights, strict=True) if w > 0 and a == 0]
    raise InfeasibleError(f"no positive total_tokens is feasible: pools with positive weight but no tokens: {empty}")
