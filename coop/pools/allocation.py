"""Pro-rata allocation to the gram by largest remainder: the parts add up exactly, no part
exceeds its weight, and the same input always gives the same answer."""
from __future__ import annotations


def largest_remainder(total: int, weights: list[tuple[int, int]]) -> dict[int, int]:
    """Split `total` over `(key, weight)` pairs in proportion to weight.

    Each key gets floor(total * weight / sum); the grams left over go one each to the largest
    remainders, ties broken by the smaller key. Refuses a total above the sum of weights."""
    if total < 0:
        raise ValueError("total must not be negative")
    positive = [(k, w) for k, w in weights if w > 0]
    whole = sum(w for _, w in positive)
    if total > whole:
        raise ValueError("cannot allocate more than the weights hold")
    if total == 0 or not positive:
        return {}
    parts: dict[int, int] = {}
    remainders: list[tuple[int, int]] = []
    given = 0
    for key, weight in positive:
        share, remainder = divmod(total * weight, whole)
        parts[key] = share
        given += share
        remainders.append((-remainder, key))
    remainders.sort()
    for _, key in remainders[: total - given]:
        parts[key] += 1
    return {k: v for k, v in parts.items() if v > 0}
