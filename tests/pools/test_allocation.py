import pytest
from hypothesis import given
from hypothesis import strategies as st

from coop.common.apportion import largest_remainder

weights_strategy = st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=60)


@given(weights_strategy, st.data())
def test_parts_add_up_exactly_and_never_exceed_a_listing(weights, data):
    pairs = list(enumerate(weights, start=1))
    total = data.draw(st.integers(min_value=0, max_value=sum(weights)))
    parts = largest_remainder(total, pairs)
    assert sum(parts.values()) == total
    for key, grams in parts.items():
        assert 0 < grams <= dict(pairs)[key]


@given(weights_strategy, st.data())
def test_every_farmer_gets_the_same_share_within_a_gram(weights, data):
    pairs = list(enumerate(weights, start=1))
    whole = sum(weights)
    total = data.draw(st.integers(min_value=0, max_value=whole))
    parts = largest_remainder(total, pairs)
    for key, weight in pairs:
        exact = total * weight / whole if whole else 0
        assert abs(parts.get(key, 0) - exact) < 1


@given(weights_strategy, st.data())
def test_same_input_same_allocation_whatever_the_order(weights, data):
    pairs = list(enumerate(weights, start=1))
    total = data.draw(st.integers(min_value=0, max_value=sum(weights)))
    shuffled = data.draw(st.permutations(pairs))
    assert largest_remainder(total, pairs) == largest_remainder(total, list(shuffled))


def test_largest_remainders_get_the_leftover_grams():
    # 10 g over three equal listings: 3 each and the extra gram to the lowest id.
    assert largest_remainder(10, [(3, 5), (1, 5), (2, 5)]) == {1: 4, 2: 3, 3: 3}
    # 7 g over 1:2 -> 2.333 and 4.666: the larger remainder takes the gram.
    assert largest_remainder(7, [(1, 10), (2, 20)]) == {1: 2, 2: 5}


@given(weights_strategy.filter(any), st.integers(min_value=0, max_value=10**12))
def test_money_above_the_weights_still_adds_up_within_a_unit(weights, total):
    # Money (funds over basis points, refunds over grams) may exceed the weights' sum.
    pairs = list(enumerate(weights, start=1))
    whole = sum(weights)
    parts = largest_remainder(total, pairs)
    assert sum(parts.values()) == total
    for key, weight in pairs:
        assert abs(parts.get(key, 0) * whole - total * weight) < whole


def test_nothing_to_split_over_or_a_negative_total_is_refused():
    with pytest.raises(ValueError):
        largest_remainder(11, [(1, 0), (2, 0)])
    with pytest.raises(ValueError):
        largest_remainder(-1, [(1, 5)])
    assert largest_remainder(0, []) == {}


def test_pools_refuse_to_allocate_more_than_listed():
    from types import SimpleNamespace

    from coop.pools import closing
    listings = [SimpleNamespace(id=1, quantity_g=5, committed_g=0),
                SimpleNamespace(id=2, quantity_g=5, committed_g=0)]
    assert closing._split_over_listings(10, listings) == {1: 5, 2: 5}
    with pytest.raises(ValueError):
        closing._split_over_listings(11, listings)
