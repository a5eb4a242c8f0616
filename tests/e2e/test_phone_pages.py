"""The treasurer's and the manager's pages on a phone, reached from the menu (nobody types a
URL), with axe-core on each (see conftest.py): reconciliation, year-end, costs, the audit log
and its CSV, the impact report; tables stacked into cards; the farmer's settlement statement
styled by its stylesheet.

Runs after test_field_day.py (files run in name order on one server): the statement is the
one that story's delivery made."""
from __future__ import annotations

import csv
import io
import re

import pytest
from sqlalchemy import create_engine, text

from tests.support import ARTIFACTS

FARMER = "farmer1@example.org"
MANAGER = "manager@example.org"
TREASURER = "treasurer@example.org"
COOP = "Cooperativa Nuevo Horizonte"


@pytest.fixture(scope="module")
def db(server):
    engine = create_engine(server.database_url)

    def query(sql: str, **params):
        with engine.connect() as conn:
            return conn.execute(text(sql), params).all()
    yield query
    engine.dispose()


def tap(visit, selector: str) -> None:
    with visit.page.expect_navigation():
        visit.page.click(selector)
    visit.page.wait_for_load_state("load")


def to_dashboard(visit) -> None:
    tap(visit, "header nav a[href$='/manage']")
    assert visit.page.url.endswith("/manage")


def test_treasurer_reaches_every_treasury_page_from_the_menu(phone, db):
    coop_id = db("SELECT id FROM cooperatives WHERE name = :c", c=COOP)[0][0]
    card = f"main ul.cards > li:has-text('{COOP}')"
    treasurer = phone()
    page = treasurer.page
    treasurer.login(TREASURER)
    to_dashboard(treasurer)
    treasurer.step("the treasurer's menu")
    pages = [("/treasury/reconciliation", "reconciliation", "Conciliación"),
             ("/treasury/year-end", "year-end close", "Cierre"),
             ("/treasury/costs", "operating costs", "gasto"),
             ("/audit", "audit log", "auditoría"),
             ("/impact", "impact report", "impacto")]
    for path, label, words in pages:
        if not page.url.endswith("/manage"):
            to_dashboard(treasurer)
        tap(treasurer, f"{card} a[href$='/manage/coops/{coop_id}{path}']")
        assert page.url.split("?")[0].endswith(f"/manage/coops/{coop_id}{path}")
        assert words.lower() in page.inner_text("main h1").lower(), page.inner_text("main h1")
        treasurer.step(label)
    # The audit log's CSV, from the audit page: raw values, one row per event.
    to_dashboard(treasurer)
    tap(treasurer, f"{card} a[href$='/manage/coops/{coop_id}/audit']")
    with page.expect_download() as download_info:
        page.click(f"main a[href$='/manage/coops/{coop_id}/audit.csv']")
    download = download_info.value
    saved = ARTIFACTS / treasurer.name / download.suggested_filename
    download.save_as(saved)
    rows = list(csv.reader(io.StringIO(saved.read_text(encoding="utf-8"))))
    events = db("SELECT count(*) FROM audit_events WHERE coop_id = :c", c=coop_id)[0][0]
    assert rows[0][:3] == ["id", "when_utc", "user_id"] and len(rows) == events + 1


def test_manager_tables_are_cards_on_a_phone(phone, db):
    coop_id = db("SELECT id FROM cooperatives WHERE name = :c", c=COOP)[0][0]
    card = f"main ul.cards > li:has-text('{COOP}')"
    manager = phone()
    page = manager.page
    manager.login(MANAGER)
    to_dashboard(manager)
    manager.step("the manager's menu")
    # The treasurer-only costs page is not offered to the manager.
    assert page.locator(f"{card} a[href$='/treasury/costs']").count() == 0
    for path, label in ((f"/manage/coops/{coop_id}", "members"),
                        (f"/manage/coops/{coop_id}/prices", "prices"),
                        (f"/manage/coops/{coop_id}/shares", "share register"),
                        (f"/manage/coops/{coop_id}/treasury/reconciliation", "reconciliation"),
                        (f"/manage/coops/{coop_id}/treasury/year-end", "year-end")):
        if not page.url.endswith("/manage"):
            to_dashboard(manager)
        tap(manager, f"{card} a[href$='{path}']")
        manager.step(label)
        stack = page.locator("table.stack")
        if stack.count():
            row = stack.first.locator("tbody tr").first
            # A card: the row is a block with a border, its head row is out of sight, and
            # each cell carries its column's name.
            assert row.evaluate("r => getComputedStyle(r).display") == "block", label
            assert row.evaluate("r => getComputedStyle(r).borderTopStyle") == "solid", label
            head = stack.first.locator("thead")
            assert head.evaluate("h => getComputedStyle(h).position") == "absolute", label
            labelled = row.locator("td[data-label]")
            if labelled.count():
                before = labelled.first.evaluate(
                    "td => getComputedStyle(td, '::before').content")
                assert before.strip('"') == labelled.first.get_attribute("data-label")
        # Nothing is wider than the phone: no sideways scrolling of the page.
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), \
            label

    # Members: search by name, the list narrows to that farmer.
    to_dashboard(manager)
    tap(manager, f"{card} a[href$='/manage/coops/{coop_id}']")
    name = db("SELECT u.name FROM users u WHERE u.email = :e", e=FARMER)[0][0]
    page.fill("input[name=q]", name)
    tap(manager, "main form.filters button[type=submit]")
    manager.step("members: search")
    rows = page.locator("main table.stack tbody tr")
    assert rows.count() == 1 and name in rows.first.inner_text()

    # The pool's page: orders and allocations as cards, and what is left to receive.
    pool_id = db("SELECT p.id FROM pools p JOIN cooperatives c ON c.id = p.coop_id "
                 "WHERE c.name = :c AND p.status = 'confirmed' ORDER BY p.id DESC", c=COOP)
    if pool_id:
        manager.goto(f"/manage/pools/{pool_id[0][0]}")
        manager.step("the pool's orders and allocations")
        row = page.locator("table.stack tbody tr").first
        assert row.evaluate("r => getComputedStyle(r).display") == "block"
        tap(manager, f"main a[href$='/manage/pools/{pool_id[0][0]}/intake']")
        manager.step("deliveries")
        assert page.locator("main p[role=status]").count() == 1


def test_farmer_statement_is_styled(phone, db):
    statements = db("SELECT i.id FROM intakes i JOIN users u ON u.id = i.farmer_user_id "
                    "WHERE u.email = :e ORDER BY i.id", e=FARMER)
    if not statements:
        pytest.fail("no statement to look at: run the whole browser suite (test_field_day.py "
                    "records the delivery this test opens)", pytrace=False)
    farmer = phone()
    page = farmer.page
    farmer.login(FARMER)
    tap(farmer, "header nav a[href$='/my/deliveries']")
    farmer.step("my deliveries")
    tap(farmer, f"main a[href$='/my/statements/{statements[-1][0]}']")
    farmer.step("the settlement statement")
    table = page.locator("main table").first
    # Chromium's defaults for a table: border-collapse separate, border-spacing 2px, cells
    # padded 1px, a body in the browser's font. The statement's stylesheet sets each.
    assert table.evaluate("t => getComputedStyle(t).borderCollapse") == "collapse"
    cell = table.locator("td").first
    assert cell.evaluate("c => getComputedStyle(c).paddingTop") != "1px"
    assert cell.evaluate("c => getComputedStyle(c).borderBottomStyle") == "solid"
    assert "system-ui" in page.evaluate("getComputedStyle(document.body).fontFamily")
    assert page.evaluate("document.styleSheets.length") >= 1
    assert page.locator("main").count() == 1 and page.locator("main table").count() == 1


SKIP = re.compile(r"^/(logout|language|static|api|stripe)\b|\.(csv|pdf|xml)\b|/photo\b|/sw\.js")


PUBLIC = re.compile(r"^/(supply|pools|coops|crops|login|signup|account|offline)?(/[^/]+)?$")


def crawl(visit, start: list[str], limit: int = 45, public: bool = True) -> list[str]:
    """Opens every page a person can reach by following links from `start`, one per URL shape
    (/manage/pools/12 and /manage/pools/13 are one; the query does not count, but print=),
    runs axe on each, and returns the paths that did not answer 200."""
    queue, shapes, refused = list(start), set(), []
    while queue and len(shapes) < limit:
        path = queue.pop(0)
        bare, _, query = path.partition("?")
        shape = re.sub(r"\d+", "N", bare) + ("?print" if "print=" in query else "")
        if shape in shapes or SKIP.search(path) or (
                not public and path not in start and PUBLIC.match(path.split("?")[0])):
            continue
        shapes.add(shape)
        response = visit.goto(path)
        if response is None or response.status != 200:
            refused.append(f"{path}: {response.status if response else 'no answer'}")
            continue
        visit.axe(path)
        hrefs = visit.page.eval_on_selector_all(
            "a[href]:not([download])", "as => as.map(a => a.getAttribute('href'))")
        queue.extend(h.split("#")[0] for h in hrefs if h.startswith("/") and len(h) > 1)
    return refused


@pytest.mark.parametrize("who, start", [
    (TREASURER, ["/manage"]),
    (MANAGER, ["/manage"]),
    (FARMER, ["/my/listings"]),
    ("buyer1@example.org", ["/supply"]),
])
def test_every_page_of_every_role_opens_and_passes_axe(phone, who, start):
    visit = phone()
    visit.login(who)
    # The pages everyone sees (supply, pools, coops) are crawled for the buyer and visitor.
    refused = crawl(visit, start, public=who.startswith("buyer"))
    assert len(visit.checked) >= 6, sorted(visit.checked)
    assert not refused, refused


def test_a_visitor_s_pages_pass_axe(phone):
    visit = phone()
    refused = crawl(visit, ["/", "/login", "/coops", "/crops"])
    assert not refused, refused
