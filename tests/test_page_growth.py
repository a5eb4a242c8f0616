"""Every HTML page of every role costs the same number of SQL queries with the demo grown 20
times as with the demo once, and sends at most 60 KB of HTML at 20x.

The demo is built once at 1x (coop/demo/grow.py: the seeded demo and one season of activity),
every page is measured for every role, the same database is grown to 20x and every page is
measured again. Pages are the GET rules of app.url_map outside the JSON API (its lists are
paginated and tested in tests/api), their arguments filled from the demo's data; a page a role
does not reach (a redirect to the login page, 403, 404) is not that role's page, and every
route must be some role's page unless SKIP names it with its reason."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from coop.auth import codes
from coop.auth.models import User
from coop.cooperatives import invitations
from coop.cooperatives.models import Cooperative, FarmerProfile
from coop.demo.grow import demo_coops, grow
from coop.extensions import db
from coop.intake.models import Intake
from coop.listings.models import Listing
from coop.lots.models import Lot
from coop.messages import services as messages
from coop.payouts.models import PayoutBatch
from coop.plots.models import Plot
from coop.pools.models import Allocation, Pool
from coop.staff import services as staff
from coop.demo.seed import PASSWORD

MAX_HTML = 60 * 1024
SCALE = 20

ROLES = {"visitor": None, "buyer": "buyer1@example.org", "farmer": "farmer1@example.org",
         "manager": "manager@example.org", "treasurer": "treasurer@example.org",
         "staff": "staff@example.org"}

# Routes that are no HTML page, each with its reason. Nothing else is skipped.
SKIP = {
    "static": "a static file",
    "listings.photo": "an image",
    "listings.photo_sized": "an image",
    "staff.document": "a registration document (PDF or image)",
    "plots.document": "a plot's document (PDF or image)",
    "listings.service_worker": "JavaScript",
    "listings.manifest": "the web manifest (JSON)",
    "listings.outbox_session": "JSON for the offline outbox",
    "plots.outbox_session": "JSON for the offline outbox (the plots' captures)",
    "impact.public_csv": "a CSV export",
    "impact.full_csv": "a CSV export",
    "treasury.audit_csv": "a CSV export",
    "treasury.reconciliation_csv": "a CSV export",
    "payouts.export": "the bank's CSV file",
    "auth.set_language": "a redirect back (it sets the language)",
    "auth.choose_pin": "a redirect for all but a farmer holding a first-login code",
    "eudr.download": "a lot's EUDR pack (GeoJSON, base64, JSON or CSV file)",
    "invoices.my_invoice_file": "an invoice's PDF or UBL XML",
    "invoices.coop_invoice_file": "an invoice's PDF or UBL XML",
    "invoices.coop_invoices_csv": "a CSV export",
    "invoices.farmer_document": "a farmer's weekly purchase document: issued once a week is "
                                "over, the demo's deliveries are this week's "
                                "(tests/invoices/test_support.py)",
    "invoices.farmer_document_file": "a purchase document's PDF or CSV",
    "pools.card_page": "one order waiting for its card, read from Stripe (nothing in it grows "
                       "with the data: tests/pools/test_cards.py)",
}


def _targets(extra_tokens: dict) -> dict:
    """The value of each route argument, from the demo's data (coop A: Nuevo Horizonte)."""
    coop = demo_coops()[0]
    farmer = db.session.scalar(select(User).where(User.email == ROLES["farmer"]))
    profile = db.session.scalar(select(FarmerProfile).where(
        FarmerProfile.coop_id == coop.id, FarmerProfile.user_id == farmer.id))
    settled = db.session.scalar(select(Pool.id).where(Pool.coop_id == coop.id,
                                                      Pool.status == "confirmed")
                                .order_by(Pool.id))
    open_pool = db.session.scalar(select(Pool.id).where(Pool.coop_id == coop.id,
                                                        Pool.status == "open").order_by(Pool.id))
    recorded = select(Intake.allocation_id)
    to_record = db.session.scalar(select(Allocation.id).where(
        Allocation.pool_id == settled, Allocation.id.notin_(recorded)).order_by(Allocation.id))
    listing = db.session.scalar(select(Listing.id).where(
        Listing.farmer_user_id == farmer.id, Listing.status == "available").order_by(Listing.id))
    intake = db.session.scalar(select(Intake.id).where(Intake.farmer_user_id == farmer.id)
                               .order_by(Intake.id))
    batch = db.session.scalar(select(PayoutBatch.id).where(PayoutBatch.coop_id == coop.id)
                              .order_by(PayoutBatch.id))
    plot = db.session.scalar(select(Plot.id).where(Plot.farmer_id == profile.id)
                             .order_by(Plot.id))
    # The demo's first lot (unit 1's settled pool): its buyers include the demo's buyer1.
    lot = db.session.scalar(select(Lot.id).where(Lot.coop_id == coop.id).order_by(Lot.id))
    # An invoice of the demo's buyer1 in coop A (its buyer's page and the coop's).
    from coop.invoices.models import Invoice
    buyer1 = db.session.scalar(select(User).where(User.email == ROLES["buyer"]))
    invoice = db.session.scalar(select(Invoice.id).where(
        Invoice.coop_id == coop.id, Invoice.buyer_id == buyer1.buyer_id,
        Invoice.kind == "invoice").order_by(Invoice.id))
    assert None not in (profile, settled, open_pool, to_record, listing, intake, batch, plot,
                        lot, invoice)
    return {"coop_id": coop.id, "slug": coop.slug, "profile_id": profile.id, "plot_id": plot,
            "pool_id": settled, "allocation_id": to_record, "listing_id": listing,
            "intake_id": intake, "batch_id": batch, "lot_id": lot, "invoice_id": invoice,
            **extra_tokens,
            # The demo's open pool fills up with every unit: the pages of its orders grow.
            ("pools.detail", "pool_id"): open_pool, ("pools.manage_pool", "pool_id"): open_pool,
            ("pools.pool_orders", "pool_id"): open_pool}


def _urls(app, targets: dict) -> dict[str, str]:
    urls = {}
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint.startswith("api.") \
                or rule.endpoint in SKIP:
            continue
        values = {arg: targets.get((rule.endpoint, arg), targets.get(arg))
                  for arg in rule.arguments}
        missing = [arg for arg, value in values.items() if value is None]
        assert not missing, f"{rule.endpoint}: no demo value for {missing}"
        with app.test_request_context():
            from flask import url_for
            urls[rule.endpoint] = url_for(rule.endpoint, **values)
    return urls


def _measure(client, count_queries, urls, warm: bool) -> dict[str, tuple[int, int, int]]:
    """endpoint -> (status, queries, bytes) of a GET; `warm`: after a first GET that warms up
    what is cached per process (at 20x the 1x pass has warmed it)."""
    out = {}
    for endpoint, url in sorted(urls.items()):
        if warm:
            first = client.get(url)
            if first.status_code != 200:
                out[endpoint] = (first.status_code, 0, 0)
                continue
        db.session.expire_all()
        with count_queries() as counter:
            response = client.get(url)
        out[endpoint] = (response.status_code, counter.count, len(response.data))
    return out


def _measure_roles(app, count_queries, urls, warm=True) -> dict[str, dict]:
    result = {}
    for role, email in ROLES.items():
        client = app.test_client()
        if email:
            response = client.post("/login", data={"login": email, "password": PASSWORD})
            assert response.status_code == 302, (role, response.data[:300])
        result[role] = _measure(client, count_queries, urls, warm)
    return result


@pytest.fixture
def demo(app):
    grow(1)
    manager = db.session.scalar(select(User).where(User.email == ROLES["manager"]))
    coop = db.session.get(Cooperative, demo_coops()[0].id)
    from coop.auth import services as auth_services
    auth_services.create_user(email=ROLES["staff"], name="Personal Minga", password=PASSWORD)
    db.session.commit()
    staff.grant(ROLES["staff"])
    _invitation, invitation_token = invitations.invite(coop, manager, "treasurer",
                                                       email="nueva.tesorera@example.org")
    buyer = db.session.scalar(select(User).where(User.email == ROLES["buyer"]))
    _row, reset_token = codes.issue_reset_link(buyer)
    db.session.commit()
    # The settled pool's lot on its way (issue 13 part 4): the journey's pages.
    from tests.support.dispatch import lot_on_its_way
    settled = db.session.scalar(select(Pool.id).where(Pool.coop_id == coop.id,
                                                      Pool.status == "confirmed")
                                .order_by(Pool.id))
    lot_id = lot_on_its_way(settled, manager, buyer)
    # The buyer's currency and organisation (issue 14): indicative amounts in EUR on the pool
    # pages, a colleague invited (the link's page).
    from decimal import Decimal

    from coop.auth import organisations
    from coop.common.models import utcnow
    from coop.fx import services as fx
    fx.store([fx.Rate(utcnow().date(), "EUR", quote, Decimal(rate))
              for quote, rate in (("COP", "4512.3"), ("PEN", "4.02"), ("USD", "1.05"))])
    auth_services.update_preferences(buyer, display_currency="EUR")
    _invitation, colleague_token = organisations.invite(buyer, email="colega@example.org",
                                                        role="accounts")
    db.session.commit()
    return {"token": invitation_token, "lot_id": lot_id,
            ("auth.organisation_invitation", "token"): colleague_token,
            ("auth.reset_with_link", "token"): reset_token,
            ("messages_public.unsubscribe", "token"): messages.unsubscribe_token(buyer.id,
                                                                                 "updates")}


def test_every_page_of_every_role_holds_its_queries_and_size_at_20x(app, count_queries,
                                                                      demo):
    urls = _urls(app, _targets(demo))
    small = _measure_roles(app, count_queries, urls)
    listings_1x = db.session.scalar(select(func.count(Listing.id)))
    grow(SCALE)
    assert db.session.scalar(select(func.count(Listing.id))) > 15 * listings_1x
    db.session.expire_all()
    big = _measure_roles(app, count_queries, urls, warm=False)

    reached = {endpoint for role in small for endpoint, (status, _q, _b) in small[role].items()
               if status == 200}
    assert set(urls) - reached == set(), "pages no role reaches: give a target or a SKIP"
    failures, table = [], []
    for role in ROLES:
        for endpoint in sorted(urls):
            status, queries, size = small[role][endpoint]
            status_big, queries_big, size_big = big[role][endpoint]
            if status != 200 and status_big != 200:
                continue
            table.append(f"{role:9} {endpoint:32} {queries:3} -> {queries_big:3} queries "
                         f"{size / 1024:6.1f} -> {size_big / 1024:6.1f} KB")
            problems = []
            if status_big != status:
                problems.append(f"status {status} at 1x, {status_big} at {SCALE}x")
            if queries_big != queries:
                problems.append(f"{queries} queries at 1x, {queries_big} at {SCALE}x")
            if size_big > MAX_HTML:
                problems.append(f"{size_big / 1024:.0f} KB of HTML at {SCALE}x")
            if problems:
                line = f"{role} {endpoint} ({urls[endpoint]}): " + "; ".join(problems)
                failures.append(line)
    print("\n".join(table))
    assert failures == [], "\n".join(failures)


def test_the_skip_list_names_real_routes(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert set(SKIP) <= endpoints
