"""The one largest-remainder split, for grams (allocations) and for money (refunds, funds,
patronage): the parts add up exactly and the same input always gives the same answer."""
from __future__ import annotations


def largest_remainder(total: int, weights) -> dict[int, int]:
    """Split `total` over `(key, weight)` pairs in proportion to weight.

    Each key gets floor(total * weight / sum); the units left over go one each to the largest
    remainders, ties broken by the smaller key. The parts add up to `total` exactly and each
    is within one unit of its exact share; keys that get nothing are left out. When `total`
    is at most the sum of the weights, no part exceeds its weight (what grams rely on).

    Precondition: `total` is not negative and, when it is positive, some weight is positive;
    refuses (ValueError) otherwise rather than lose units."""
    if total < 0:
        raise ValueError("total must not be negative")
    positive = [(k, w) for k, w in weights if w > 0]
    whole = sum(w for _, w in positive)
    if total == 0:
        return {}
    if not whole:
        raise ValueError("nothing to split over")
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
