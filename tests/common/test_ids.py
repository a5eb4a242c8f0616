"""Ids the database cannot hold are a 404 in every path, before any view or query runs
(coop/common/ids.py, the app's `int` URL converter)."""
from __future__ import annotations

import re

import pytest

from coop.common.ids import MAX_ID, query_id

OUT_OF_RANGE = ("2147483648", "9223372036854775808", "9" * 30, "0", "١", "１", "9" * 5000)


def _paths_with_ids(app, value):
    """Every route with an `<int:...>` argument, that argument `value`, the others 1."""
    from werkzeug.routing import IntegerConverter
    for rule in app.url_map.iter_rules():
        ints = [name for name, conv in rule._converters.items()
                if isinstance(conv, IntegerConverter)]
        if not ints:
            continue
        path = rule.rule
        for name in rule.arguments:
            path = re.sub(rf"<(?:[a-z]+(?:\([^)]*\))?:)?{name}>",
                          value if name in ints else "1", path)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            yield method, path


def test_every_int_route_uses_the_database_id_converter(app):
    """No route keeps werkzeug's own IntegerConverter (any size, any script's digits)."""
    from werkzeug.routing import IntegerConverter
    plain = [rule.rule for rule in app.url_map.iter_rules()
             for conv in rule._converters.values()
             if isinstance(conv, IntegerConverter) and type(conv).__name__ != "DatabaseIdConverter"]
    assert plain == []
    assert any(True for _ in _paths_with_ids(app, "1"))


@pytest.mark.parametrize("value", OUT_OF_RANGE)
def test_an_id_the_database_cannot_hold_is_a_404_anywhere(app, client, value):
    """Anonymous, every method of every route with an id: 404 (not a login redirect that
    would run the query after logging in, not a 500)."""
    answers = {}
    for method, path in _paths_with_ids(app, value):
        response = client.open(path, method=method)
        answers[(method, path)] = response.status_code
    assert len(answers) > 50
    wrong = {(m, p[:90]): v for (m, p), v in answers.items() if v != 404}
    assert wrong == {}


def test_logged_in_member_gets_404_for_huge_ids(client, make_coop, make_user, login):
    manager = make_user()
    coop = make_coop(manager=manager)
    login(manager)
    for path in (f"/manage/coops/{coop.id}/pools/2147483648",
                 "/manage/coops/2147483648", f"/pools/{MAX_ID + 1}",
                 f"/manage/coops/{coop.id}/pools/99999999999999999999999"):
        assert client.get(path).status_code == 404, path
    # The largest id the database holds is an ordinary id: not found, not refused otherwise.
    assert client.get(f"/pools/{MAX_ID}").status_code == 404
    assert client.get(f"/manage/coops/{coop.id}").status_code == 200


@pytest.mark.parametrize("text,expected", [("1", 1), (str(MAX_ID), MAX_ID), (" 7 ", 7)])
def test_query_id_reads_ids(text, expected):
    assert query_id(text) == expected


@pytest.mark.parametrize("text", ["0", "-1", "+5", "1e3", str(MAX_ID + 1), "9" * 40, "١٢",
                                  "１２", "", None, "1.0"])
def test_query_id_refuses_what_no_row_has(text):
    with pytest.raises(ValueError):
        query_id(text)


def test_huge_cursor_in_html_pages_is_ignored(client, make_coop, make_user, login):
    treasurer = make_user()
    coop = make_coop(treasurer=treasurer)
    login(treasurer)
    for path in (f"/manage/coops/{coop.id}/statements?before=99999999999999999999999",
                 f"/manage/coops/{coop.id}/audit?before=99999999999999999999999"):
        response = client.get(path)
        assert response.status_code in (200, 403), (path, response.status_code)


def test_the_converter_regex_is_exactly_the_range():
    from coop.common.ids import DatabaseIdConverter
    pattern = re.compile(DatabaseIdConverter.regex)
    inside = [1, 9, 10, 99, 123456789, 999999999, 1000000000, 1999999999, 2000000000,
              2099999999, 2139999999, 2146999999, 2147399999, 2147479999, 2147482999,
              2147483599, 2147483639, 2147483640, MAX_ID]
    outside = ["0", "01", "-1", str(MAX_ID + 1), "2147483650", "2147483700", "2147484000",
               "2147490000", "2147500000", "2148000000", "2150000000", "2200000000",
               "3000000000", "9999999999", "10000000000"]
    assert all(pattern.fullmatch(str(n)) for n in inside)
    assert not any(pattern.fullmatch(text) for text in outside)
