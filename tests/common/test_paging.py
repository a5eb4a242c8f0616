"""The keyset pager: pages follow each other without a row repeated or missed (even where
rows share a timestamp), cursors round-trip and are checked, limits are bounded, and a page
costs the same queries on a big table as on a small one."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import insert, select

from coop.catalog.models import Grade
from coop.common.paging import BadCursor, decode_key, encode_key, keyset
from coop.extensions import db
from coop.listings.models import Listing

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def farmer_coop(make_coop, make_farmer):
    coop = make_coop()
    return make_farmer(coop), coop


def add(farmer, coop, n, *, same_time_every=7):
    grade = db.session.execute(select(Grade.id, Grade.crop_id)).first()
    rows = [{"coop_id": coop.id, "farmer_user_id": farmer.id, "crop_id": grade.crop_id,
             "grade_id": grade.id, "quantity_g": 1000 + i, "committed_g": 0,
             "harvested_on": date.today() - timedelta(days=1 + i % 5),
             "collection_point": "Acopio", "notes": "", "status": "available",
             # runs of equal timestamps: the id must break the ties
             "created_at": T0 + timedelta(minutes=i // same_time_every),
             "updated_at": T0} for i in range(n)]
    db.session.execute(insert(Listing), rows)
    db.session.commit()


ORDERS = {
    "created desc, id desc": [(Listing.created_at, "desc"), (Listing.id, "desc")],
    "created asc, id asc": [Listing.created_at, Listing.id],
    "created desc, id asc": [(Listing.created_at, "desc"), Listing.id],
    "harvest asc, id desc": [Listing.harvested_on, (Listing.id, "desc")],
    "id desc": [(Listing.id, "desc")],
}


def walk(order, limit):
    stmt = select(Listing)
    seen, cursor, pages = [], None, []
    while True:
        page = keyset(stmt, order, cursor, limit)
        seen += [r.id for r in page.items]
        pages.append(page)
        if not page.has_more:
            return seen, pages
        cursor = page.next_cursor


@pytest.mark.parametrize("name", list(ORDERS))
def test_pages_cover_every_row_once_in_order(farmer_coop, name):
    add(*farmer_coop, 103)
    order = ORDERS[name]
    seen, pages = walk(order, 10)
    stmt = select(Listing.id)
    expected = list(db.session.scalars(stmt.order_by(*[
        (c[0].desc() if c[1] == "desc" else c[0].asc()) if isinstance(c, tuple) else c.asc()
        for c in order])))
    assert seen == expected and len(seen) == 103
    assert len(pages) == 11 and len(pages[-1].items) == 3
    assert pages[-1].next_cursor is None and not pages[0].has_prev


def test_previous_cursor_leads_back_to_the_page_before(farmer_coop):
    add(*farmer_coop, 45)
    order = ORDERS["created desc, id desc"]
    _, pages = walk(order, 10)
    assert pages[1].has_prev and pages[1].prev_cursor is None  # page 1 has no cursor
    for i in range(2, len(pages)):
        back = keyset(select(Listing), order, pages[i].prev_cursor, 10)
        assert [r.id for r in back.items] == [r.id for r in pages[i - 1].items]


def test_cursor_round_trip():
    key = (T0, date(2026, 1, 2), 42, "Ñandú")
    cursor = encode_key(key)
    assert cursor.isascii() and "=" not in cursor and "+" not in cursor and "/" not in cursor
    assert decode_key(cursor, ["datetime", "date", "int", "str"]) == key


@pytest.mark.parametrize("bad", [
    "x", "!!!", "ñ", "A" * 600, encode_key([1]), encode_key(["a", 1]),
    encode_key([1.5, 2]), encode_key([True, 2]), encode_key(["2026-13-01T00:00:00+00:00", 1]),
    encode_key(["2026-01-01T00:00:00", 1]), encode_key([None, 1]), encode_key([2**70, 1]),
    "W1siYSJdXQ", "e30",  # [["a"]], {}
])
def test_bad_cursors(farmer_coop, bad):
    add(*farmer_coop, 5)
    order = ORDERS["created desc, id desc"]
    with pytest.raises(BadCursor):
        keyset(select(Listing), order, bad, 10, strict=True)
    # a page (not the API) reads it as page 1
    page = keyset(select(Listing), order, bad, 10)
    assert len(page.items) == 5 and page.cursor is None


def test_limit_bounds(farmer_coop):
    add(*farmer_coop, 5)
    assert len(keyset(select(Listing), [Listing.id], None, 0).items) == 1
    page = keyset(select(Listing), [Listing.id], None, 5)
    assert len(page.items) == 5 and not page.has_more and page.next_cursor is None
    page = keyset(select(Listing), [Listing.id], None, 4)
    assert len(page.items) == 4 and page.has_more


def test_queries_do_not_grow_with_rows(farmer_coop, count_queries):
    order = ORDERS["created desc, id desc"]
    counts = []
    for n in (60, 540):
        add(*farmer_coop, n)
        first = keyset(select(Listing), order, None, 50)
        db.session.expire_all()
        with count_queries() as one:
            keyset(select(Listing), order, None, 50)
        with count_queries() as two:
            keyset(select(Listing), order, first.next_cursor, 50)
        counts.append((one.count, two.count))
    # (a Listing's eager-loaded relations may add a query, the same on every page)
    assert counts[0] == counts[1] and counts[0][1] == counts[0][0] + 1
