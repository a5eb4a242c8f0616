"""Pages a treasurer and a manager reach from the coop's menu and use on a phone: the menu's
links per role, tables that stack into cards under a phone width (data-label on every cell),
members search and paging, the deliveries' "not yet received" filter with what is left, the
settlement statement's own stylesheet, and no inline style anywhere."""
from __future__ import annotations

import re
from datetime import date, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from sqlalchemy import delete, insert, select

from coop.catalog.models import Crop, Grade
from coop.common.models import utcnow
from coop.extensions import db
from coop.intake import services as intake
from coop.listings.models import Listing
from coop.pools.models import Allocation
from tests.support.rows import add_members

pytestmark = pytest.mark.usefixtures("ledger_sound")

ROOT = Path(__file__).resolve().parent.parent


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a" and dict(attrs).get("href"):
            self.hrefs.append(dict(attrs)["href"])


def links(html: str) -> list[str]:
    parser = Links()
    parser.feed(html)
    return parser.hrefs


def en(client):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


# ---------------------------------------------------------------- the coop's menu

TREASURY = ("/treasury/reconciliation", "/treasury/year-end", "/treasury/costs", "/audit",
            "/audit.csv")


@pytest.mark.parametrize("role, expected", [
    ("treasurer", {"/treasury/reconciliation", "/treasury/year-end", "/treasury/costs",
                   "/audit", "/audit.csv"}),
    ("manager", {"/treasury/reconciliation", "/treasury/year-end", "/audit", "/audit.csv"}),
])
def test_the_menu_leads_each_role_to_its_treasury_pages(client, login, make_coop, make_user,
                                                         role, expected):
    treasurer = make_user(name="Tesorera")
    coop = make_coop(treasurer=treasurer)
    manager = next(m.user for m in coop.memberships if m.role == "manager")
    login(treasurer if role == "treasurer" else manager)
    home = client.get("/supply").get_data(as_text=True)
    assert "/manage" in links(home), "no Manage link in the main menu"
    dashboard = client.get("/manage")
    assert dashboard.status_code == 200
    found = links(dashboard.get_data(as_text=True))
    prefix = f"/manage/coops/{coop.id}"
    shown = {path for path in TREASURY if prefix + path in found}
    assert shown == expected
    # Every link the menu shows opens for that role: nobody is sent to a refusal.
    for href in found:
        if href.startswith(prefix):
            assert client.get(href).status_code == 200, href


def test_farmers_and_buyers_get_no_treasury_links(client, login, make_coop, make_farmer,
                                                  make_buyer):
    coop = make_coop()
    prefix = f"/manage/coops/{coop.id}"
    for user in (make_farmer(coop), make_buyer()):
        login(user)
        for page in ("/supply", "/manage"):
            found = links(client.get(page).get_data(as_text=True))
            assert "/manage" not in found
            assert not [h for h in found if h.startswith(prefix)], (user.email, page)


def test_reconciliation_links_costs_for_the_treasurer_only(client, login, make_coop,
                                                           make_user):
    treasurer = make_user()
    coop = make_coop(treasurer=treasurer)
    manager = next(m.user for m in coop.memberships if m.role == "manager")
    url = f"/manage/coops/{coop.id}/treasury/reconciliation"
    costs = f"/manage/coops/{coop.id}/treasury/costs"
    login(treasurer)
    assert costs in links(client.get(url).get_data(as_text=True))
    login(manager)
    page = client.get(url).get_data(as_text=True)
    assert costs not in links(page)
    assert client.get(costs).status_code == 403  # why the manager gets no link


def test_audit_page_links_its_csv(client, login, make_coop, make_user):
    treasurer = make_user()
    coop = make_coop(treasurer=treasurer)
    login(treasurer)
    page = client.get(f"/manage/coops/{coop.id}/audit").get_data(as_text=True)
    assert f"/manage/coops/{coop.id}/audit.csv" in links(page)
    response = client.get(f"/manage/coops/{coop.id}/audit.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"


# ---------------------------------------------------------------- tables on a phone

class StackedTables(HTMLParser):
    """Per table of class "stack": its column heads and, per body row, each cell's
    (data-label, colspan)."""

    def __init__(self):
        super().__init__()
        self.tables: list[dict] = []
        self.depth = 0
        self.section = None
        self.head_text: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self.depth += 1
            if "stack" in (a.get("class") or "").split() and self.depth == 1:
                self.tables.append({"heads": [], "rows": []})
            elif self.depth == 1:
                self.tables.append(None)
        table = self.tables[-1] if self.tables else None
        if table is None or self.depth != 1:
            return
        if tag in ("thead", "tbody", "tfoot"):
            self.section = tag
        elif tag == "tr" and self.section == "tbody":
            table["rows"].append([])
        elif tag in ("td", "th") and self.section == "thead":
            self.head_text = []
        elif tag in ("td", "th") and self.section == "tbody":
            table["rows"][-1].append((a.get("data-label"), a.get("colspan")))

    def handle_endtag(self, tag):
        table = self.tables[-1] if self.tables else None
        if tag in ("td", "th") and self.head_text is not None and table:
            table["heads"].append(" ".join("".join(self.head_text).split()))
            self.head_text = None
        elif tag == "table":
            self.depth -= 1
            self.section = None

    def handle_data(self, data):
        if self.head_text is not None:
            self.head_text.append(data)


def stacked(html: str) -> list[dict]:
    parser = StackedTables()
    parser.feed(html)
    return [t for t in parser.tables if t]


def assert_stacks(html: str, url: str) -> None:
    tables = stacked(html)
    assert tables, f"{url}: no stacked table"
    rows = 0
    for table in tables:
        for row in table["rows"]:
            if len(row) == 1 and row[0][1]:
                continue  # "nothing yet" spans the whole row
            rows += 1
            assert len(row) == len(table["heads"]), (url, row, table["heads"])
            # The first cell is the card's title; every other cell says what it is, in the
            # words of its column's head.
            assert [label for label, _ in row[1:]] == table["heads"][1:], (url, row)
    assert rows, f"{url}: no row to stack"


def test_the_phone_stylesheet_stacks_tables_into_cards(client):
    css = (ROOT / "static" / "minga.css").read_text()
    block = re.search(r"@media \(max-width:40rem\)\{(.*)\n\}", css, re.S)
    assert block, "no phone-width media query"
    rules = block.group(1)
    assert "table.stack thead{position:absolute" in rules
    assert "table.stack td[data-label]::before{content:attr(data-label)" in rules
    assert re.search(r"table\.stack tr\{[^}]*border", rules)


def test_manager_tables_stack_on_a_phone(client, login, sold, make_listing):
    m = sold
    make_listing(m.farmers[0], kg="40")  # something on offer
    intake.record_intake(m.manager, m.alloc[0].id, received_kg="50", grade="sca85")
    db.session.commit()
    login(m.manager)
    en(client)
    coop = m.coop.id
    for url in ("/supply", f"/manage/pools/{m.pool.id}", f"/manage/coops/{coop}/prices",
                f"/manage/coops/{coop}", f"/manage/coops/{coop}/shares",
                f"/manage/coops/{coop}/impact"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert_stacks(response.get_data(as_text=True), url)


def test_treasurer_tables_stack_on_a_phone(client, login, sold):
    from coop.cooperatives import services as coop_services
    from coop.payouts import services as payouts
    m = sold
    for a in m.alloc:
        intake.record_intake(m.manager, a.id, received_kg="10", grade="sca85")
    db.session.commit()
    login(m.treasurer)
    en(client)
    payables = f"/manage/coops/{m.coop.id}/payables"
    assert_stacks(client.get(payables).get_data(as_text=True), payables)
    batch, _ = payouts.create_batch(m.coop, m.treasurer)
    db.session.commit()
    url = f"/manage/payout-batches/{batch.id}"
    response = client.get(url)
    assert response.status_code == 200
    assert_stacks(response.get_data(as_text=True), url)
    login(m.manager)
    profile = coop_services.farmer_profile(m.coop.id, m.farmers[0].id)
    from coop.plots import services as plots_services
    plots_services.add_plot(profile, name="Finca", hectares="2", replaced_crop="coca",
                            illicit_hectares="1", licit_crop="coffee")
    db.session.commit()
    farmer = f"/manage/coops/{m.coop.id}/farmers/{profile.id}"
    assert_stacks(client.get(farmer).get_data(as_text=True), farmer)


# ---------------------------------------------------------------- no inline style, scroll regions

def templates() -> list[Path]:
    return sorted((ROOT / "templates").rglob("*.html"))  # the one place (tests/test_layout.py)


def test_no_template_has_an_inline_style():
    """The CSP (style-src 'self') refuses <style> and style=: they would leave pages bare."""
    found = [str(p.relative_to(ROOT)) for p in templates()
             if re.search(r"<style|\sstyle=", p.read_text())]
    assert not found, found


def test_every_scrolling_table_can_be_reached_by_keyboard():
    """axe's scrollable-region-focusable: a region that scrolls takes the focus and has a name."""
    bad = []
    for path in templates():
        for tag in re.findall(r"<div class=\"scroll\"[^>]*>", path.read_text()):
            if not all(a in tag for a in ('role="region"', 'tabindex="0"', "aria-label=")):
                bad.append((str(path.relative_to(ROOT)), tag))
    assert not bad, bad


def test_statement_is_styled_by_a_stylesheet_and_in_a_main_landmark(client, login, sold):
    rec = intake.record_intake(sold.manager, sold.alloc[1].id, received_kg="100",
                               grade="sca85")[0]
    db.session.commit()
    login(sold.farmers[1])
    response = client.get(f"/my/statements/{rec.id}")
    html = response.get_data(as_text=True)
    assert "<style" not in html and " style=" not in html
    assert re.search(r'<body class="statement">\s*<nav [^>]*aria-label=', html)
    assert '<main id="main">' in html and html.index("<main") < html.index("<table")
    assert html.index("</table>") < html.index("</main>")
    sheet = re.search(r'href="(/static/statement\.css\?v=[0-9a-f]+)"', html).group(1)
    css = client.get(sheet)
    assert css.status_code == 200 and css.mimetype == "text/css"
    text = css.get_data(as_text=True)
    assert ".statement table{" in text and "@media print" in text


# ---------------------------------------------------------------- members: search and pages

def member_rows(html: str) -> list[str]:
    return re.findall(r"<tr><td>([^<]+)</td><td data-label=", html)


def test_members_search_by_name_or_number_and_payout_method(client, login, make_coop,
                                                            make_farmer):
    coop = make_coop()
    manager = next(m.user for m in coop.memberships if m.role == "manager")
    other = make_coop()
    make_farmer(other, name="Socia ajena")
    add_members(coop, 5)
    add_members(coop, 2, start=100, rail="nequi")
    login(manager)
    url = f"/manage/coops/{coop.id}"
    assert len(member_rows(client.get(url).get_data(as_text=True))) == 7
    assert member_rows(client.get(url + "?q=socia 0003").get_data(as_text=True)) == ["S-0003"]
    assert member_rows(client.get(url + "?q=S-0004").get_data(as_text=True)) == ["S-0004"]
    assert member_rows(client.get(url + "?q=s-01").get_data(as_text=True)) == ["S-0100",
                                                                             "S-0101"]
    assert member_rows(client.get(url + "?rail=nequi").get_data(as_text=True)) == [
        "S-0100", "S-0101"]
    assert member_rows(client.get(url + "?rail=nequi&q=0101").get_data(as_text=True)) == [
        "S-0101"]
    # Another coop's farmer is never found; LIKE's wildcards are plain characters.
    for q in ("ajena", "%", "_"):
        html = client.get(url + "?q=" + q).get_data(as_text=True)
        assert member_rows(html) == [] and "Socia ajena" not in html, q
    html = en(client).get(url + "?q=0003").get_data(as_text=True)
    assert "1 farmer found." in html and 'value="0003"' in html
    assert "No farmer matches." in client.get(url + "?q=zzz").get_data(as_text=True)
    # Whatever comes in the query string is a page, never an error.
    for bad in ("?rail=bitcoin", "?page=abc", "?cursor=-3", "?cursor=WzFd", "?q=" + "x" * 500):
        assert client.get(url + bad).status_code == 200, bad


def test_members_come_a_page_at_a_time_in_constant_queries(client, login, make_coop,
                                                           count_queries):
    coop = make_coop()
    manager = next(m.user for m in coop.memberships if m.role == "manager")
    login(manager)
    en(client)
    url = f"/manage/coops/{coop.id}"
    add_members(coop, 10)
    client.get(url)
    db.session.expire_all()
    with count_queries() as few:
        html = client.get(url).get_data(as_text=True)
    assert len(member_rows(html)) == 10 and "Next page" not in html
    add_members(coop, 110, start=10)
    client.get(url)
    db.session.expire_all()
    with count_queries() as many:
        html = client.get(url).get_data(as_text=True)
    assert many.count == few.count, (few.statements, many.statements)
    rows = member_rows(html)
    assert rows == [f"S-{i:04d}" for i in range(50)] and "Farmers (120)" in html
    # The roles' list is the staff's: 120 farmers are not listed again with their role.
    roles = html[html.index(">Roles</h2>"):]
    assert "Socia" not in roles and manager.name in roles
    # Keyset pages: the next page starts after the last member shown, whatever comes before.
    second_url = next_link(html)
    second = client.get(second_url).get_data(as_text=True)
    assert member_rows(second) == [f"S-{i:04d}" for i in range(50, 100)]
    last = client.get(next_link(second)).get_data(as_text=True)
    assert member_rows(last) == [f"S-{i:04d}" for i in range(100, 120)]
    assert 'rel="prev"' in last and "Next page" not in last
    # ... and costs what the first page costs, plus the one query that finds the previous page
    db.session.expire_all()
    with count_queries() as later:
        client.get(second_url)
    assert later.count == many.count + 1
    back = re.search(r'href="([^"]+)" rel="prev"', last).group(1).replace("&amp;", "&")
    assert member_rows(client.get(back).get_data(as_text=True)) == member_rows(second)
    # The filter stays in the page links.
    filtered = client.get(url + "?q=Socia&rail=cash").get_data(as_text=True)
    assert next_link(filtered).startswith(f"{url}?q=Socia&rail=cash&cursor=")
    # A cursor nobody made shows the first page.
    assert member_rows(client.get(url + "?cursor=garbage").get_data(as_text=True)) == rows


def next_link(html: str) -> str:
    return re.search(r'href="([^"]+)" rel="next"', html).group(1).replace("&amp;", "&")


# ---------------------------------------------------------------- deliveries left to receive

def test_deliveries_filter_what_is_not_yet_received_and_count_it(client, login, sold):
    m = sold
    intake.record_intake(m.manager, m.alloc[1].id, received_kg="100", grade="sca85")
    db.session.commit()
    login(m.manager)
    en(client)
    url = f"/manage/pools/{m.pool.id}/intake"
    record = "/manage/allocations/{}/intake"
    html = client.get(url).get_data(as_text=True)
    assert "2 deliveries of 3 left to receive: 200 kg." in html
    assert all(record.format(a.id) in html for a in (m.alloc[0], m.alloc[2]))
    assert "/my/statements/" in html and '<option value="pending">Not yet received' in html
    pending = client.get(url + "?show=pending").get_data(as_text=True)
    assert record.format(m.alloc[0].id) in pending and record.format(m.alloc[2].id) in pending
    assert "/my/statements/" not in pending  # the received one is filtered out
    assert "2 deliveries of 3 left to receive" in pending
    for a in (m.alloc[0], m.alloc[2]):
        intake.record_intake(m.manager, a.id, received_kg="1", grade="sca85")
    db.session.commit()
    assert "Nothing left to receive." in client.get(url + "?show=pending").get_data(
        as_text=True)
    html = client.get(url).get_data(as_text=True)
    assert "Every delivery of this pool is received." in html
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "es"
    intake_one = client.get(url).get_data(as_text=True)
    assert "Todas las entregas de este pedido conjunto están recibidas." in intake_one


def test_deliveries_filter_by_collection_point(client, login, sold):
    m = sold
    m.listings[2].collection_point = "La Sierra"
    db.session.commit()
    intake.record_intake(m.manager, m.alloc[1].id, received_kg="100", grade="sca85")
    db.session.commit()
    login(m.manager)
    en(client)
    url = f"/manage/pools/{m.pool.id}/intake"
    record = "/manage/allocations/{}/intake"
    html = client.get(url).get_data(as_text=True)
    assert re.findall(r'<option value="([^"]+)"', html)[:2] == ["La Sierra", "Vereda El Tambo"]
    sierra = client.get(url + "?point=La+Sierra").get_data(as_text=True)
    assert record.format(m.alloc[2].id) in sierra and record.format(m.alloc[0].id) not in sierra
    assert "1 delivery of 1 left to receive: 150 kg." in sierra
    assert '<option value="La Sierra" selected>' in sierra
    tambo = client.get(url + "?point=Vereda+El+Tambo&show=pending").get_data(as_text=True)
    assert record.format(m.alloc[0].id) in tambo and record.format(m.alloc[2].id) not in tambo
    assert "/my/statements/" not in tambo
    assert "1 delivery of 2 left to receive: 50 kg." in tambo
    nowhere = client.get(url + "?point=Nowhere").get_data(as_text=True)
    assert "Nothing was allocated in this pool." in nowhere


def add_allocations(m, n: int) -> None:
    """n more allocations in the sold pool, each on a listing of its own (fast inserts)."""
    grade = db.session.scalar(select(Grade).join(Crop).where(Crop.slug == "coffee",
                                                             Grade.code == "sca85"))
    now = utcnow()
    farmers = m.farmers
    first = db.session.scalar(select(Listing.id).order_by(Listing.id.desc())) or 0
    db.session.execute(insert(Listing), [
        {"coop_id": m.coop.id, "farmer_user_id": farmers[i % 3].id, "crop_id": grade.crop_id,
         "grade_id": grade.id, "quantity_g": 10_000, "committed_g": 10_000,
         "harvested_on": date.today() - timedelta(days=3), "collection_point": "Acopio",
         "notes": "", "status": "committed", "created_at": now, "updated_at": now}
        for i in range(n)])
    listing_ids = list(db.session.scalars(select(Listing.id).where(Listing.id > first)
                                          .order_by(Listing.id)))
    db.session.execute(insert(Allocation), [
        {"pool_id": m.pool.id, "listing_id": lid, "farmer_user_id": farmers[i % 3].id,
         "quantity_g": 10_000, "farmer_price_per_kg_minor": 2_800_000,
         "farmer_amount_minor": 28_000_000, "created_at": now}
        for i, lid in enumerate(listing_ids)])
    db.session.commit()


def test_deliveries_page_in_constant_queries(client, login, sold, count_queries):
    m = sold
    intake.record_intake(m.manager, m.alloc[0].id, received_kg="50", grade="sca85")
    db.session.commit()
    login(m.manager)
    en(client)
    url = f"/manage/pools/{m.pool.id}/intake"
    client.get(url)
    db.session.expire_all()
    with count_queries() as few:
        client.get(url)
    add_allocations(m, 120)
    client.get(url)
    db.session.expire_all()
    with count_queries() as many:
        html = client.get(url).get_data(as_text=True)
    assert many.count == few.count, (few.statements, many.statements)
    assert "122 deliveries of 123 left to receive: 1,450 kg." in html
    assert html.count('<a class="button" href="/manage/allocations/') == 49  # 50 a page
    assert "Page 1 of 3" in html
    pending = client.get(url + "?show=pending&page=3").get_data(as_text=True)
    assert pending.count('<a class="button" href="/manage/allocations/') == 22
    assert f"{url}?show=pending&amp;page=2" in pending
    at = client.get(url + "?point=Acopio&show=pending").get_data(as_text=True)
    assert "120 deliveries of 120 left to receive: 1,200 kg." in at
    assert f"{url}?point=Acopio&amp;show=pending&amp;page=2" in at


# ---------------------------------------------------------------- audit log and statements pages

def test_audit_log_pages_back_in_constant_queries(client, login, make_coop, make_user,
                                                  count_queries):
    from coop.audit.models import AuditEvent
    treasurer = make_user(name="Tesorera")
    coop = make_coop(treasurer=treasurer)
    now = utcnow()

    def add(n):
        db.session.execute(insert(AuditEvent), [
            {"coop_id": coop.id, "user_id": treasurer.id, "action": "ledger.reverse",
             "object_type": "ledger_entry", "object_id": str(i), "before_json": "{}",
             "after_json": "{}", "created_at": now} for i in range(n)])
        db.session.commit()
    # This test counts the pages of its own events: the founding's (roles granted) set aside.
    db.session.execute(delete(AuditEvent).where(AuditEvent.coop_id == coop.id))
    db.session.commit()
    login(treasurer)
    en(client)
    url = f"/manage/coops/{coop.id}/audit"
    add(5)
    client.get(url)
    db.session.expire_all()
    with count_queries() as few:
        html = client.get(url).get_data(as_text=True)
    assert html.count("<tr><td>") == 5 and "Older events" not in html, html[-3000:]
    add(245)
    client.get(url)
    db.session.expire_all()
    with count_queries() as many:
        html = client.get(url).get_data(as_text=True)
    assert many.count == few.count
    ids = sorted(db.session.scalars(select(AuditEvent.id).where(AuditEvent.coop_id == coop.id)),
                 reverse=True)
    assert html.count("<tr><td>") == 100
    older = re.search(r'href="([^"]*before=(\d+))"', html)
    assert int(older.group(2)) == ids[99]
    second = client.get(older.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert second.count("<tr><td>") == 100
    last = client.get(f"{url}?before={ids[199]}").get_data(as_text=True)
    assert last.count("<tr><td>") == 50 and "Older events" not in last
    assert client.get(f"{url}?before=abc").status_code == 200


def test_coop_statements_page_back(client, login, sold, monkeypatch):
    from coop.intake import views
    monkeypatch.setattr(views, "STATEMENTS_PAGE", 2)
    m = sold
    recs = [intake.record_intake(m.manager, a.id, received_kg="1", grade="sca85")[0]
            for a in m.alloc]
    db.session.commit()
    login(m.manager)
    en(client)
    url = f"/manage/coops/{m.coop.id}/statements"
    html = client.get(url).get_data(as_text=True)
    shown = [int(i) for i in re.findall(r'href="/my/statements/(\d+)"', html)]
    assert shown == [recs[2].id, recs[1].id]
    assert f"{url}?before={recs[1].id}" in html
    older = client.get(f"{url}?before={recs[1].id}").get_data(as_text=True)
    assert [int(i) for i in re.findall(r'href="/my/statements/(\d+)"', older)] == [recs[0].id]
    assert "Older statements" not in older


def test_the_roles_list_keeps_staff_with_all_their_roles(client, login, make_coop,
                                                         make_farmer):
    from coop.cooperatives import services as coop_services
    coop = make_coop()
    manager = next(m.user for m in coop.memberships if m.role == "manager")
    plain = make_farmer(coop, name="Solo productora")
    helper = make_farmer(coop, name="Productora tesorera")
    coop_services.grant_role(coop, helper, "treasurer")
    db.session.commit()
    login(manager)
    html = en(client).get(f"/manage/coops/{coop.id}").get_data(as_text=True)
    roles = html[html.index(">Roles</h2>"):]
    assert plain.name not in roles and plain.name in html  # on the farmers' list only
    assert f"/roles/{helper.id}/treasurer/revoke" in roles
    assert f"/roles/{helper.id}/farmer/revoke" in roles
