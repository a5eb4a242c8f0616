"""Schemathesis over the app's own /api/v1/openapi.json, in-process (the Flask test client, no
network), for a farmer, a buyer, a manager and a treasurer: no answer is a 500, every answer
has a status code its operation documents, a content type and a body its schema describes.

Each role gets its own world (a coop with prices, farmers with listings, a confirmed pool with
its allocations and a delivery recorded, a payout batch, an open pool with a buyer's order),
then, for every operation of the document:
- the tour: one well-formed call on the world's own objects (so that 2xx bodies are checked
  too, not only refusals), the same calls for every role;
- generated cases: positive ones on the world's object for the path's id (a bounded number,
  derandomized: the same cases every run, no shrinking), and negative ones (values the
  document does not allow: ids out of its bounds, wrong types, missing fields).

A failure names the operation, the role, what was wrong and a curl line that reproduces it."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (allow_header_conformance,
                                               content_type_conformance,
                                               response_schema_conformance,
                                               status_code_conformance, unsupported_method)

from coop.common.models import utcnow
from coop.extensions import db
from coop.intake import services as intake
from coop.payouts import services as payouts
from coop.pools import services as pools
from tests.support import PASSWORD
from tests.support.intake import VISA

ROLES = ("farmer", "buyer", "manager", "treasurer")
# Examples per operation and mode: enough to reach every refusal of a view, few enough that
# the four roles take well under a minute.
EXAMPLES = {GenerationMode.POSITIVE: 6, GenerationMode.NEGATIVE: 4}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
# Schemathesis's coverage cases also try the methods a path does not take: 405 with Allow.
COVERAGE_CHECKS = [*CHECKS, unsupported_method, allow_header_conformance]


@pytest.fixture
def world(sold, make_listing):
    """`sold` (a confirmed pool, its allocations), a delivery recorded and paid in a batch, an
    open pool with buyer 0's order, and a listing of farmer 0 that no pool needs."""
    m = sold
    m.free_listing = make_listing(m.farmers[0], kg="40")  # names the farmer's one plot
    # Farmer 0's complete plot, named (instead of the default one) by the listing delivered:
    # the lot is EUDR-ready.
    plot_id = _plot_of(m.farmers[0], m.manager)
    from sqlalchemy import delete
    from coop.listings.models import ListingPlot
    db.session.execute(delete(ListingPlot).where(
        ListingPlot.listing_id == m.alloc[0].listing_id))
    db.session.add(ListingPlot(listing_id=m.alloc[0].listing_id, plot_id=plot_id))
    db.session.commit()
    delivery, _ = intake.record_intake(m.manager, m.alloc[0].id, received_kg="50",
                                       grade="sca85")
    batch, _ = payouts.create_batch(m.coop, m.treasurer)
    pool = m.open_pool(min_kg="10", max_kg="200")
    order, _ = pools.place_order(m.buyers[0], pool.id, quantity_kg="10", payment_method=VISA)
    db.session.commit()
    m.farmer, m.buyer = m.farmers[0], m.buyers[0]
    m.ids = {"/listings/{id}": m.free_listing.id, "/pools/{id}": pool.id,
             "/pools/{id}/orders": pool.id, "/pools/{id}/close": pool.id,
             "/orders/{id}": order.id, "/orders/{id}/confirm": order.id,
             "/allocations/{id}/intake": m.alloc[1].id,
             "/intakes/{id}": delivery.id, "/coops/{id}/ledger/trial-balance": m.coop.id,
             "/coops/{id}/payables": m.coop.id, "/coops/{id}/payout-batches": m.coop.id,
             "/payout-batches/{id}": batch.id, "/payout-batches/{id}/export.csv": batch.id,
             "/payout-batches/{id}/confirmations": batch.id}
    m.line_id = batch.lines[0].id
    m.ids["/plots/{id}"] = plot_id
    from coop.lots import services as lots
    lot = lots.lot_of_pool(m.alloc[0].pool_id)
    assert lots.gaps(lots.detail(lot)) == [], "the tour's lot must be EUDR-ready"
    lot_id = lot.id
    for path in ("/lots/{id}", "/lots/{id}/eudr.geojson", "/lots/{id}/eudr.json",
                 "/lots/{id}/dds-reference"):
        m.ids[path] = lot_id
    from sqlalchemy import select

    from coop.invoices.models import Invoice
    invoice_id = db.session.scalar(select(Invoice.id).where(
        Invoice.buyer_id == m.buyers[0].buyer_id, Invoice.kind == "invoice"))
    for path in ("/invoices/{id}", "/invoices/{id}.pdf", "/invoices/{id}.xml"):
        m.ids[path] = invoice_id
    return m


def _plot_of(farmer, manager) -> int:
    """A plot of the farmer with a polygon, declarations and consent (a complete one)."""
    from sqlalchemy import select

    from coop.cooperatives.models import FarmerProfile
    from coop.plots import geometry as geo
    from coop.plots import services as plots
    profile = db.session.scalar(select(FarmerProfile).where(FarmerProfile.user_id == farmer.id))
    plot = plots.add_plot(profile, name="Tour", hectares="1.23", replaced_crop=None,
                          illicit_hectares="0")
    plots.record_geometry(plot, geo.loads(
        '{"type":"Polygon","coordinates":[[[-76.600000,2.440000],[-76.599000,2.440000],'
        '[-76.599000,2.441000],[-76.600000,2.441000],[-76.600000,2.440000]]]}'),
        country="CO", source="geojson", by=manager)
    plots.declare_cutoff(plot, land_use="not_forest", evidence_kind="satellite",
                         evidence_ref="GFW 1", by=manager)
    plots.declare_legality(plot, tenure_type="title", reference="T-1", by=manager)
    plots.record_consent(profile, by=manager, locale="es")
    db.session.commit()
    return plot.id


def tour(m, user) -> list[tuple[str, str, dict]]:
    """(method, path, Case arguments): a well-formed call of every operation on the world's
    objects, in an order where each can succeed for the role it is meant for."""
    coop = m.coop.id
    return [
        ("post", "/auth/tokens", {"body": {"email": user.email, "password": PASSWORD}}),
        ("get", "/auth/tokens", {}),
        ("delete", "/auth/tokens/{id}", {}),
        ("get", "/me", {}),
        ("patch", "/me", {"body": {"language": "es", "timezone": "America/Lima",
                                   "announcements": True}}),
        ("get", "/invitations", {}),
        ("post", "/invitations/{id}/accept", {}),
        ("post", "/invitations/{id}/decline", {}),
        ("get", "/crops", {}),
        ("get", "/fx-rates", {}),
        ("get", "/coops", {}),
        ("get", "/listings", {"query": {"limit": 2}}),
        ("post", "/listings", {"body": {
            "crop": "coffee", "grade": "sca85", "quantity_kg": "20.5",
            "harvested_on": (date.today() - timedelta(days=3)).isoformat(),
            "collection_point": "Vereda El Tambo"}, "headers": {"Idempotency-Key": "tour-l"}}),
        ("get", "/listings/{id}", {}),
        ("patch", "/listings/{id}", {"body": {"notes": "secado al sol"}}),
        ("get", "/pools", {"query": {"status": "open"}}),
        ("post", "/pools", {"body": {
            "coop_id": coop, "crop": "coffee", "grade": "sca85", "min_kg": "1",
            "max_kg": "5", "closes_at": (utcnow() + timedelta(days=2)).isoformat()}}),
        ("get", "/pools/{id}", {}),
        ("post", "/pools/{id}/orders", {"body": {"quantity_kg": "5", "payment_method": VISA},
                                        "headers": {"Idempotency-Key": "tour-o"}}),
        ("get", "/orders", {"query": {"limit": 1}}),
        ("get", "/orders/{id}", {}),
        ("post", "/orders/{id}/confirm", {}),
        ("patch", "/orders/{id}", {"body": {"quantity_kg": "12"}}),
        # The lot before the next delivery (which names no plot) makes it incomplete.
        ("get", "/lots", {"query": {"limit": 2}}),
        ("get", "/lots/{id}", {}),
        ("get", "/lots/{id}/eudr.geojson", {}),
        ("put", "/lots/{id}/dds-reference", {"body": {"reference": "25COXRT3VGH7L9"}}),
        ("get", "/lots/{id}/eudr.json", {}),
        ("get", "/billing-details", {}),
        ("put", "/billing-details", {"body": {"legal_name": "Tostadores S.A.S.",
                                              "tax_id": "900123456-8", "country": "CO",
                                              "address": "Calle 1 # 2-3, Popayán"}}),
        ("get", "/invoices", {"query": {"limit": 2}}),
        ("get", "/invoices/{id}", {}),
        ("get", "/invoices/{id}.pdf", {}),
        ("get", "/invoices/{id}.xml", {}),
        ("post", "/allocations/{id}/intake", {"body": {"received_kg": "100", "grade": "sca85"},
                                              "headers": {"Idempotency-Key": "tour-i"}}),
        ("get", "/intakes/{id}", {}),
        ("get", "/plots", {"query": {"coop_id": coop, "limit": 2}}),
        ("get", "/plots/{id}", {}),
        ("get", "/coops/{id}/ledger/trial-balance", {}),
        ("get", "/coops/{id}/payables", {}),
        ("post", "/coops/{id}/payout-batches", {"body": {},
                                                "headers": {"Idempotency-Key": "tour-b"}}),
        ("get", "/payout-batches/{id}", {}),
        ("get", "/payout-batches/{id}/export.csv", {"query": {"rail": "cash"}}),
        ("post", "/payout-batches/{id}/confirmations", {
            "body": f"line_id,status,reference\n{m.line_id},paid,REF-1\n",
            "media_type": "text/csv"}),
        ("delete", "/orders/{id}", {}),
        ("post", "/pools/{id}/close", {}),
        ("get", "/pools/{id}/close", {}),
        ("delete", "/listings/{id}", {}),
        ("delete", "/auth/tokens/current", {}),  # last: it ends the token the tour used
    ]


def _per_user(world, user, make_coop, token) -> None:
    """The ids of the tour's calls that are the caller's own: a spare token to revoke, and two
    invitations (to another coop) to accept and to decline."""
    from sqlalchemy import select

    from coop.auth.models import ApiToken
    from coop.cooperatives import invitations
    token(user)
    world.ids["/auth/tokens/{id}"] = db.session.scalar(
        select(ApiToken.id).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc()))
    other = make_coop(name=f"Otra cooperativa {user.id}")
    manager = next(m.user for m in other.memberships if m.role == "manager")
    accept, _ = invitations.invite(other, manager, "treasurer", email=user.email)
    decline, _ = invitations.invite(other, manager, "manager", email=user.email)
    db.session.commit()
    world.ids["/invitations/{id}/accept"] = accept.id
    world.ids["/invitations/{id}/decline"] = decline.id


def _generated(operation, mode, client, headers, path_id):
    fixed = {"id": path_id} if path_id and mode is GenerationMode.POSITIVE else None

    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=fixed))
    @settings(max_examples=EXAMPLES[mode], derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], print_blob=False,
              suppress_health_check=list(HealthCheck))
    def check(case):
        response = case.call(session=client, headers=headers)
        case.validate_response(response, checks=CHECKS, headers=headers)

    check()


def _coverage(schema, operation, client, headers) -> list[BaseException]:
    """Schemathesis's deterministic boundary cases: each parameter and field at its bounds
    and just past them (ids 0 and 2,147,483,648), of the wrong type, missing; another
    method; no token. Every case runs; the first failure of each kind is kept."""
    modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    found: dict[tuple, BaseException] = {}
    for case in schema.iter_coverage_cases(
            operation, generation_modes=modes,
            generation_config=schema.config.generation_for(operation=operation)):
        try:
            response = case.call(session=client, headers=headers)
            case.validate_response(response, checks=COVERAGE_CHECKS, headers=headers)
        except (Exception, FailureGroup) as exc:
            kinds = getattr(exc, "exceptions", None) or (exc,)
            found.setdefault(tuple(sorted(type(e).__name__ for e in kinds)), exc)
    return list(found.values())


def _summary(exc: BaseException) -> str:
    """What failed and how to reproduce it, without the tracebacks."""
    notes = "\n".join(getattr(exc, "__notes__", []))
    return f"{exc}\n{notes}".strip()


@pytest.mark.parametrize("role", ROLES)
def test_no_operation_answers_a_500_or_off_its_document(app, client, world, token, make_coop,
                                                        role):
    # The test client does not undo Flask-Compress: ask for plain bodies.
    user = getattr(world, role)
    _per_user(world, user, make_coop, token)
    headers = {**token(user), "Accept-Encoding": "identity"}
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = {(op.method, op.path): op for op in
                  (result.ok() for result in schema.get_all_operations())}
    failures = []
    for method, path, arguments in tour(world, user):
        operation = operations[(method, path)]
        arguments = dict(arguments)
        if "{id}" in path:
            arguments["path_parameters"] = {"id": world.ids[path]}
        if "body" in arguments:
            arguments.setdefault("media_type", "application/json")
        case = operation.Case(**arguments)
        try:
            response = case.call(session=client, headers=headers)

            case.validate_response(response, checks=CHECKS, headers=headers)
        except (Exception, FailureGroup) as exc:  # every failure, then one assert
            failures.append(f"--- {operation.label} (tour) as {role}:\n{_summary(exc)}")
    assert {(m, p) for m, p, _ in tour(world, user)} == set(operations), "the tour misses some"
    headers = {**token(user), "Accept-Encoding": "identity"}  # the tour revoked its token
    for (method, path), operation in operations.items():
        for exc in _coverage(schema, operation, client, headers):
            failures.append(f"--- {operation.label} (coverage) as {role}:\n{_summary(exc)}")
        for mode in EXAMPLES:
            try:
                _generated(operation, mode, client, headers, world.ids.get(path))
            except Unsatisfiable:
                if mode is GenerationMode.NEGATIVE:
                    continue  # nothing to make invalid (no parameter, no body)
                raise
            except (Exception, FailureGroup) as exc:
                failures.append(f"--- {operation.label} ({mode.value}) as {role}:\n"
                                f"{_summary(exc)}")
    assert not failures, "\n".join(failures)
