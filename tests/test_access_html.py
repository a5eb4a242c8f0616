"""Who gets what on every HTML route: a matrix of routes x roles x cooperatives.

Two cooperatives, A and B, each with a manager, a treasurer and two farmers (the first with a
listing that has a photo); a buyer; an anonymous visitor. Every route of the auth, catalog,
coops and listings blueprints is listed in EXPECTED with the answer each role must get; a
route added without being classified here fails test_every_html_route_is_classified.

Targets fill the route's arguments: "A" (coop A's ids), "B" (coop B's), "mix" (coop B's id with
coop A's member, user or listing: the ids of one cooperative smuggled into another's URL) and
"missing" (ids that do not exist). Roles are relative to the target: MANAGER is the target
coop's manager, O_MANAGER the other coop's. After every refused request the database must be
exactly as it was.
"""
from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
from PIL import Image
from sqlalchemy import select

from coop.auth.models import User
from coop.cooperatives import invitations
from coop.cooperatives import services as coop_services
from coop.extensions import db
from coop.listings import services as listing_services
from tests.support.confirm import confirm, is_confirmation
from tests.support import KEEP

BLUEPRINTS = ("auth", "catalog", "coops", "listings")

ANON, BUYER = "anon", "buyer"
MANAGER, TREASURER, FARMER, FARMER2 = "manager", "treasurer", "farmer", "farmer2"
O_MANAGER, O_TREASURER, O_FARMER = "other_manager", "other_treasurer", "other_farmer"
ACTORS = (ANON, BUYER, MANAGER, TREASURER, FARMER, FARMER2, O_MANAGER, O_TREASURER, O_FARMER)

LOGIN = "login"        # 302 to the login page
REDIRECT = "redirect"  # 302 elsewhere, nothing written
DONE = "done"          # 302 and the database changed (the allowed write happened)
MAYBE = "maybe"        # 302; may write (the language choice of a logged-in user)
ASKED = "asked"        # 200 and the database changed (a code sent, the change waiting for it)
REFUSALS = (LOGIN, 400, 401, 403, 404, 405, 422)
CONFIRMED = {"listings.withdraw"}  # a confirmation step before it acts


def everyone(result, anon=None):
    spec = {actor: result for actor in ACTORS}
    if anon is not None:
        spec[ANON] = anon
    return spec


def manager_page(ok=200):
    """Only the target coop's manager; its other members 403; outsiders 404."""
    return {ANON: LOGIN, BUYER: 404, MANAGER: ok, TREASURER: 403, FARMER: 403, FARMER2: 403,
            O_MANAGER: 404, O_TREASURER: 404, O_FARMER: 404}


def mixed_manager_page(manager=404):
    """Coop B's URL with coop A's member: B's manager finds nothing; the rest as usual."""
    return {ANON: LOGIN, BUYER: 404, MANAGER: manager, TREASURER: 403, FARMER: 403,
            FARMER2: 403, O_MANAGER: 404, O_TREASURER: 404, O_FARMER: 404}


def farmers_only(ok=200):
    return {ANON: LOGIN, BUYER: 403, MANAGER: 403, TREASURER: 403, FARMER: ok, FARMER2: ok,
            O_MANAGER: 403, O_TREASURER: 403, O_FARMER: ok}


def own_listing(ok=200):
    """The listing's farmer only; other farmers (same coop or not) 404; non-farmers 403."""
    return {ANON: LOGIN, BUYER: 403, MANAGER: 403, TREASURER: 403, FARMER: ok, FARMER2: 404,
            O_MANAGER: 403, O_TREASURER: 403, O_FARMER: 404}


def missing_listing():
    return {**farmers_only(404)}


PHOTO = {ANON: LOGIN, BUYER: 404, MANAGER: 200, TREASURER: 404, FARMER: 200, FARMER2: 404,
         O_MANAGER: 404, O_TREASURER: 404, O_FARMER: 404}
MISSING_MANAGE = everyone(404, anon=LOGIN)


def same(spec):
    """Targets A and B answer alike (roles are relative to the target)."""
    return {"A": spec, "B": spec}


# endpoint -> method -> target -> actor -> expected answer
EXPECTED = {
    "auth.login": {"GET": {"-": everyone(200)}, "POST": {"-": everyone(422)}},
    # Logging out ends the session on the server: the user's session version moves.
    "auth.logout": {"POST": {"-": everyone(DONE, anon=REDIRECT)}},
    "auth.change_password": {"GET": {"-": everyone(200, anon=LOGIN)},
                             "POST": {"-": everyone(422, anon=LOGIN)}},
    # The target's treasurer holds an API token: only they revoke it; for anyone else it is
    # not there (404), like an unknown one.
    "auth.revoke_token": {"POST": {**same({**everyone(404, anon=LOGIN), TREASURER: DONE}),
                                   "missing": everyone(404, anon=LOGIN)}},
    "auth.signup": {"GET": {"-": everyone(200)}, "POST": {"-": everyone(422)}},
    "auth.account": {"GET": {"-": everyone(200, anon=LOGIN)}},
    # Only for a farmer holding a first-login code; everyone else is sent to their start page.
    "auth.choose_pin": {"GET": {"-": everyone(REDIRECT, anon=LOGIN)},
                        "POST": {"-": everyone(REDIRECT, anon=LOGIN)}},
    # Getting in without help: for anyone (the same answers whether or not the account
    # exists); a reset link's token that is no live link is a 404.
    "auth.forgot_password": {"GET": {"-": everyone(200)}, "POST": {"-": everyone(422)}},
    "auth.reset_with_code": {"GET": {"-": everyone(200)}, "POST": {"-": everyone(422)}},
    "auth.reset_with_link": {"GET": {**same(everyone(404)), "missing": everyone(404)},
                             "POST": {**same(everyone(404)), "missing": everyone(404)}},
    "auth.send_login_code": {"GET": {"-": everyone(200)}, "POST": {"-": everyone(422)}},
    "auth.login_with_code": {"GET": {"-": everyone(200)}, "POST": {"-": everyone(422)}},
    # The account page's own changes: the person's own, nobody else's.
    "auth.preferences": {"POST": {"-": everyone(422, anon=LOGIN)}},
    "auth.change_pin": {"GET": {"-": everyone(200, anon=LOGIN)},
                        "POST": {"-": everyone(422, anon=LOGIN)}},
    "auth.change_phone": {"POST": {"-": everyone(422, anon=LOGIN)}},
    "auth.confirm_phone": {"POST": {"-": everyone(422, anon=LOGIN)}},
    # The buyer organisation (issue 14): its page for its users (the world's buyer is its
    # admin), nobody else's; a user of another organisation (the coops' treasurers) is not
    # found; the coops' invitation links are no organisation's (404).
    "auth.organisation": {"GET": {"-": {**everyone(403, anon=LOGIN), BUYER: 200}}},
    "auth.organisation_invite": {"POST": {"-": {**everyone(403, anon=LOGIN), BUYER: 422}}},
    "auth.display_currency": {"POST": {"-": {**everyone(403, anon=LOGIN), BUYER: REDIRECT}}},
    "auth.organisation_withdraw": {"POST": {**same({**everyone(403, anon=LOGIN), BUYER: 404}),
                                            "missing": {**everyone(403, anon=LOGIN),
                                                        BUYER: 404}}},
    "auth.organisation_role": {"POST": {**same({**everyone(403, anon=LOGIN), BUYER: 404}),
                                        "missing": {**everyone(403, anon=LOGIN), BUYER: 404}}},
    "auth.organisation_remove": {"POST": {**same({**everyone(403, anon=LOGIN), BUYER: 404}),
                                          "missing": {**everyone(403, anon=LOGIN),
                                                      BUYER: 404}}},
    "auth.organisation_invitation": {"GET": {**same(everyone(404)), "missing": everyone(404)}},
    "auth.organisation_accept": {"POST": {**same(everyone(404, anon=LOGIN)),
                                          "missing": everyone(404, anon=LOGIN)}},
    "auth.organisation_join_account": {"POST": {**same(everyone(404)),
                                                "missing": everyone(404)}},
    "auth.set_language": {"GET": {"A": everyone(MAYBE), "missing": everyone(REDIRECT)},
                          "POST": {"A": everyone(MAYBE), "missing": everyone(REDIRECT)}},
    "catalog.home": {"GET": {"-": everyone(REDIRECT, anon=200)}},
    "catalog.supply": {"GET": {"-": everyone(200)}},
    "catalog.crops": {"GET": {"-": everyone(200)}},
    "coops.index": {"GET": {"-": everyone(200)}},
    "coops.public": {"GET": {**same(everyone(200)), "missing": everyone(404)}},
    "coops.dashboard": {"GET": {"-": everyone(200, anon=LOGIN)}},
    # Any account may found a cooperative (and becomes its manager); it waits for Minga's
    # staff to verify it.
    "coops.create": {"GET": {"-": everyone(200, anon=LOGIN)},
                     "POST": {"-": everyone(DONE, anon=LOGIN)}},
    # The registration page; asking again is for a refused coop only (these are verified).
    "coops.registration": {"GET": {**same(manager_page()), "missing": MISSING_MANAGE},
                           "POST": {**same(manager_page(409)), "missing": MISSING_MANAGE}},
    # A pending invitation's new link (or withdrawal): its coop's manager only; B's manager
    # reaching A's invitation through B's URL finds nothing.
    "coops.invitation_action": {"POST": {**same(manager_page(DONE)),
                                         "mix": mixed_manager_page(),
                                         "missing": MISSING_MANAGE}},
    # The invited person's side (each coop invited the buyer to be a manager): the link's page
    # is for whoever holds it; only the addressee answers; an account is made from the link
    # only for an address that has none, logged out.
    "coops.my_invitations": {"GET": {"-": everyone(200, anon=LOGIN)}},
    "coops.invitation": {"GET": {**same(everyone(200)), "missing": everyone(404)}},
    "coops.invitation_account": {"POST": {**same(everyone(422, anon=409)),
                                          "missing": everyone(404)}},
    "coops.answer_invitation": {"POST": {**same({**everyone(404, anon=LOGIN), BUYER: DONE}),
                                         "missing": everyone(404, anon=LOGIN)}},
    "coops.members": {"GET": {**same(manager_page()), "missing": MISSING_MANAGE}},
    "coops.add_farmer": {"GET": {**same(manager_page()), "missing": MISSING_MANAGE},
                         "POST": {**same(manager_page(DONE)), "missing": MISSING_MANAGE}},
    "coops.farmer": {"GET": {**same(manager_page()), "mix": mixed_manager_page(),
                             "missing": MISSING_MANAGE}},
    "coops.add_plot": {"POST": {**same(manager_page(DONE)), "mix": mixed_manager_page(),
                                "missing": MISSING_MANAGE}},
    "coops.reset_pin": {"POST": {**same(manager_page(DONE)), "mix": mixed_manager_page(),
                                 "missing": MISSING_MANAGE}},
    "coops.update_tax_id": {"POST": {**same(manager_page(DONE)), "mix": mixed_manager_page(),
                                     "missing": MISSING_MANAGE}},
    # A code goes to the farmer's phone; the change waits for it (confirm_payout).
    "coops.update_payout": {"POST": {**same(manager_page(ASKED)), "mix": mixed_manager_page(),
                                     "missing": MISSING_MANAGE}},
    "coops.confirm_payout": {"POST": {**same(manager_page(422)), "mix": mixed_manager_page(),
                                      "missing": MISSING_MANAGE}},
    "coops.grant_role": {"POST": {**same(manager_page(DONE)), "missing": MISSING_MANAGE}},
    # B's manager revoking a role that A's treasurer holds in A: nothing to revoke in B.
    "coops.revoke_role": {"POST": {**same(manager_page(DONE)),
                                   "mix": mixed_manager_page(REDIRECT),
                                   "missing": MISSING_MANAGE}},
    "coops.collection_points": {"GET": {**same(manager_page()), "missing": MISSING_MANAGE},
                                "POST": {**same(manager_page(DONE)),
                                         "missing": MISSING_MANAGE}},
    # B's manager renaming A's point through B's URL finds nothing.
    "coops.rename_collection_point": {"POST": {**same(manager_page(DONE)),
                                               "mix": mixed_manager_page(),
                                               "missing": MISSING_MANAGE}},
    "listings.mine": {"GET": {"-": farmers_only()}},
    "listings.new": {"GET": {"-": farmers_only()}, "POST": {"-": farmers_only(422)}},
    "listings.edit": {"GET": {**same(own_listing()), "missing": missing_listing()},
                      "POST": {**same(own_listing(422)), "missing": missing_listing()}},
    "listings.withdraw": {"POST": {**same(own_listing(DONE)), "missing": missing_listing()}},
    "listings.photo": {"GET": {**same(PHOTO), "missing": everyone(404, anon=LOGIN)}},
    # The photo's sizes for pages: shown to everyone while the harvest is on offer.
    "listings.photo_sized": {"GET": {**same(everyone(200)), "missing": everyone(404)}},
    # The offline shell: the service worker and the offline page are for every visitor; the
    # outbox's session (who is logged in, a CSRF token) answers farmers only, as JSON.
    "listings.service_worker": {"GET": {"-": everyone(200)}},
    "listings.offline": {"GET": {"-": everyone(200)}},
    "listings.manifest": {"GET": {"-": everyone(200)}},
    "listings.outbox_session": {"GET": {"-": {**farmers_only(), ANON: 401}}},
}


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (120, 80, 40)).save(out, "PNG")
    return out.getvalue()


class World:
    """Two cooperatives and everyone around them."""

    def __init__(self, make_user, make_buyer, make_coop, make_farmer):
        self.buyer = make_buyer(email="buyer@example.org")
        self.people = {}
        self.coops = {}
        self.profiles = {}
        self.listings = {}
        self.invitations = {}
        for side, country, currency in (("A", "CO", "COP"), ("B", "PE", "PEN")):
            manager = make_user(email=f"manager{side}@example.org", name=f"Manager {side}")
            treasurer = make_user(email=f"treasurer{side}@example.org",
                                  name=f"Treasurer {side}")
            coop = make_coop(name=f"Coop {side}", country=country, currency=currency,
                             manager=manager, treasurer=treasurer)
            farmer = make_farmer(coop, name=f"Farmer {side}")
            farmer2 = make_farmer(coop, name=f"Second farmer {side}")
            listing, _ = listing_services.create_listing(
                farmer, crop="coffee", grade="sca85", quantity_kg="100",
                harvested_on=date.today() - timedelta(days=3), photo=_png())
            invitation, token = invitations.invite(coop, manager, "manager",
                                                   email=self.buyer.email)
            db.session.commit()
            self.invitations[side] = (invitation.id, token)
            self.coops[side] = coop
            self.people[side] = {MANAGER: manager, TREASURER: treasurer, FARMER: farmer,
                                 FARMER2: farmer2}
            self.profiles[side] = coop_services.farmer_profile(coop.id, farmer.id)
            self.listings[side] = listing
        from coop.auth import services as auth_services
        from coop.auth.models import ApiToken
        for side in ("A", "B"):
            auth_services.issue_token(self.people[side][TREASURER])
        db.session.commit()
        self.tokens = {side: db.session.scalar(select(ApiToken.id).where(
            ApiToken.user_id == self.people[side][TREASURER].id)) for side in ("A", "B")}
        self.ids = {side: self._ids(side) for side in ("A", "B")}

    def _ids(self, side):
        return {"coop_id": self.coops[side].id, "slug": self.coops[side].slug,
                "profile_id": self.profiles[side].id, "listing_id": self.listings[side].id,
                "user_id": self.people[side][TREASURER].id, "role": "treasurer", "code": "en",
                "width": 160, "point_id": coop_services.collection_points(self.coops[side].id)[0].id,
                "token_id": self.tokens[side],
                "invitation_id": self.invitations[side][0], "token": self.invitations[side][1],
                "action": "renew", "answer": "decline"}


    def args(self, target: str) -> dict:
        if target in ("-", "A"):
            return self.ids["A"]
        if target == "B":
            return self.ids["B"]
        if target == "mix":  # B's cooperative, A's member / user / listing
            return {**self.ids["A"], "coop_id": self.coops["B"].id, "slug": self.coops["B"].slug}
        return {"coop_id": 999999, "slug": "no-such-coop", "profile_id": 999999,
                "listing_id": 999999, "user_id": 999999, "role": "treasurer", "code": "xx",
                "width": 160, "point_id": 999999, "token_id": 999999,
                "invitation_id": 999999,
                "token": "no-such-invitation-token", "action": "renew", "answer": "decline"}


    def actor(self, who: str, target: str):
        """The user playing `who` for a target (None for the anonymous visitor)."""
        if who == ANON:
            return None
        if who == BUYER:
            return self.buyer
        own = "B" if target in ("B", "mix") else "A"
        other = "A" if own == "B" else "B"
        if who.startswith("other_"):
            return self.people[other][who.removeprefix("other_")]
        return self.people[own][who]

    def secrets(self, target: str) -> list[str]:
        """What an outsider must not see of the target's members."""
        side = "A" if target in ("-", "A", "mix") else "B"
        profile = self.profiles[side]
        return [profile.national_id, profile.user.email]


@pytest.fixture
def world(make_user, make_buyer, make_coop, make_farmer):
    return World(make_user, make_buyer, make_coop, make_farmer)


_counter = iter(range(1, 10**6))


def post_data(endpoint: str, target: str, world: World) -> dict:
    """Valid input for the writes, so a refusal is about who asks, not what they send."""
    n = next(_counter)
    if endpoint in ("coops.create", "coops.registration"):
        from coop.cooperatives.verification import nit_check_digit
        base = f"{800_000_000 + n}"
        return {"name": f"New coop {n}", "country": "CO", "currency": "COP",
                "legal_name": f"New coop {n} Ltda.", "tax_id": f"{base}-{nit_check_digit(base)}",
                "document": (io.BytesIO(b"%PDF-1.4\n%%EOF\n"), "registro.pdf")}
    if endpoint == "coops.invitation_account":
        return {"name": f"New person {n}", "password": "first-password-1"}
    if endpoint == "coops.add_farmer":
        return {"name": f"New farmer {n}", "email": f"new{n}@example.org",
                "password": "first-password-1", "member_number": f"NEW-{n}",
                "national_id": f"77{n:06d}", "payout_rail": "cash", "gender": ""}
    if endpoint == "coops.add_plot":
        return {"plot-name": f"Plot {n}", "plot-hectares": "1.5", "plot-replaced_crop": "coca",
                "plot-illicit_hectares": "0.5"}
    if endpoint == "coops.update_tax_id":
        # Coop A is Colombian (a cédula), B Peruvian (a DNI); "mix" is refused (404) first.
        return ({"taxid-tax_id_type": "DNI", "taxid-tax_id": f"40{n:06d}"} if target == "B"
                else {"taxid-tax_id_type": "CC", "taxid-tax_id": f"52{n:06d}"})
    if endpoint == "coops.update_payout":
        return {"payout-payout_rail": "bank", "payout-payout_account": f"12345{n:06d}"}
    if endpoint in ("coops.collection_points", "coops.rename_collection_point"):
        return {"name": f"Punto {n}", "place": "Vereda"}
    if endpoint == "auth.organisation_role":
        return {"role": "accounts"}
    if endpoint == "auth.organisation_join_account":
        return {"name": f"New person {n}", "password": "first-password-1"}
    if endpoint == "coops.grant_role":
        return {"email": world.buyer.email, "role": "treasurer"}
    return {}  # login, signup, listings.new/edit: empty input, a form error for whoever may


def db_state() -> dict:
    db.session.rollback()
    db.session.expire_all()
    state = {}
    for table in db.metadata.sorted_tables:
        if table.name not in KEEP:
            state[table.name] = sorted(repr(tuple(row)) for row in
                                       db.session.execute(select(table)).all())
    return state


def client_as(app, user):
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    if user is not None:
        with client.session_transaction() as session:
            session["_user_id"] = user.get_id()  # "<id>:<session version>"
            session["login_factor"] = "password"
            session["_fresh"] = True
    return client


def rule_for(app, endpoint):
    rules = [r for r in app.url_map.iter_rules() if r.endpoint == endpoint]
    assert len(rules) == 1, endpoint
    return rules[0]


def html_endpoints(app) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] in BLUEPRINTS:
            out.setdefault(rule.endpoint, set()).update(rule.methods - {"HEAD", "OPTIONS"})
    return out


def test_every_html_route_is_classified(app):
    routes = html_endpoints(app)
    assert set(EXPECTED) == set(routes), (
        "classify new routes in EXPECTED (or remove gone ones): "
        f"{sorted(set(routes) ^ set(EXPECTED))}")
    for endpoint, methods in routes.items():
        assert set(EXPECTED[endpoint]) == methods, endpoint
        rule = rule_for(app, endpoint)
        for method, targets in EXPECTED[endpoint].items():
            assert all(set(spec) == set(ACTORS) for spec in targets.values()), endpoint
            if rule.arguments:
                assert {"A", "B", "missing"} <= set(targets) or endpoint == "auth.set_language"
                assert "-" not in targets, endpoint
            else:
                assert set(targets) == {"-"}, endpoint


def check(response, expected, *, endpoint, method, who, target, before, world):
    where = f"{method} {endpoint} as {who} on {target}"
    status = response.status_code
    if expected == LOGIN:
        assert status == 302 and "/login" in response.headers["Location"], (where, status)
    elif expected in (REDIRECT, DONE, MAYBE):
        assert status == 302 and "/login" not in response.headers["Location"], (where, status)
    elif expected == ASKED:
        assert status == 200, (where, status, response.data[:300])
    else:
        assert status == expected, (where, status, response.data[:300])
    if expected in (403, 404):
        body = response.get_data(as_text=True)
        for secret in world.secrets(target):
            assert secret not in body, (where, "leaks", secret)
    after = db_state()
    if expected in (DONE, ASKED):
        assert after != before, (where, "the allowed write did not happen")
    elif expected != MAYBE:
        changed = {t for t in after if after[t] != before[t]}
        assert not changed, (where, "changed", changed)


@pytest.mark.parametrize("endpoint", sorted(EXPECTED))
def test_access_matrix(app, world, endpoint):
    from flask import url_for
    rule = rule_for(app, endpoint)
    jobs = []
    for method, targets in EXPECTED[endpoint].items():
        for target, spec in targets.items():
            for who in ACTORS:
                jobs.append((method, target, who, spec[who]))
    # Refusals first, the allowed writes last, so no write changes what a later request sees.
    jobs.sort(key=lambda job: job[3] in (DONE, ASKED))
    for method, target, who, expected in jobs:
        args = {k: v for k, v in world.args(target).items() if k in rule.arguments}
        with app.test_request_context():
            url = url_for(endpoint, **args)
        client = client_as(app, world.actor(who, target))
        before = db_state()
        data = post_data(endpoint, target, world) if method == "POST" else None
        response = client.open(url, method=method, data=data)
        if expected == DONE and endpoint in CONFIRMED:
            # An irreversible action: the first POST shows what will happen, "Yes" acts.
            assert is_confirmation(response), (endpoint, who, target, response.status_code)
            assert db_state() == before, (endpoint, who, target, "the first POST wrote")
            response = confirm(client, response)
        check(response, expected, endpoint=endpoint, method=method, who=who, target=target,
              before=before, world=world)


def test_get_never_reaches_a_post_only_route(app, world):
    """Links and prefetchers send GET: a write route must answer 405 and write nothing."""
    from flask import url_for
    manager = world.people["A"][MANAGER]
    farmer = world.people["A"][FARMER]
    for endpoint, methods in html_endpoints(app).items():
        if "GET" in methods:
            continue
        rule = rule_for(app, endpoint)
        args = {k: v for k, v in world.args("A").items() if k in rule.arguments}
        with app.test_request_context():
            url = url_for(endpoint, **args)
        for user in (manager, farmer):
            before = db_state()
            assert client_as(app, user).get(url).status_code == 405, endpoint
            assert db_state() == before


def test_manager_sees_own_members_and_not_the_others(app, world):
    client = client_as(app, world.people["A"][MANAGER])
    page = client.get(f"/manage/coops/{world.coops['A'].id}").get_data(as_text=True)
    assert world.profiles["A"].member_number in page
    assert world.profiles["B"].member_number not in page
    dashboard = client.get("/manage").get_data(as_text=True)
    assert "Coop A" in dashboard and "Coop B" not in dashboard


def test_treasurer_dashboard_lists_their_coop_but_members_page_is_refused(app, world):
    client = client_as(app, world.people["A"][TREASURER])
    assert "Coop A" in client.get("/manage").get_data(as_text=True)
    assert client.get(f"/manage/coops/{world.coops['A'].id}").status_code == 403


def test_farmer_sees_only_own_listings(app, world):
    client = client_as(app, world.people["A"][FARMER2])
    page = client.get("/my/listings").get_data(as_text=True)
    assert f"/my/listings/{world.listings['A'].id}/edit" not in page
    client = client_as(app, world.people["A"][FARMER])
    page = client.get("/my/listings").get_data(as_text=True)
    assert f"/my/listings/{world.listings['A'].id}/edit" in page
    assert f"/my/listings/{world.listings['B'].id}/edit" not in page


def test_public_pages_show_no_personal_data(app, world):
    for user in (None, world.buyer, world.people["B"][MANAGER]):
        client = client_as(app, user)
        for url in ("/supply", "/coops", f"/coops/{world.coops['A'].slug}", "/crops"):
            body = client.get(url).get_data(as_text=True)
            for secret in world.secrets("A") + [world.people["A"][FARMER].name]:
                assert secret not in body, (url, secret)


def test_a_removed_member_loses_access_at_once(app, world):
    """Roles are read on every request, not cached in the session."""
    coop = world.coops["A"]
    manager = world.people["A"][MANAGER]
    client = client_as(app, manager)
    assert client.get(f"/manage/coops/{coop.id}").status_code == 200
    coop_services.grant_role(coop, world.people["A"][TREASURER], "manager")
    coop_services.revoke_role(coop, manager, "manager")
    db.session.commit()
    assert client.get(f"/manage/coops/{coop.id}").status_code == 404
    assert db.session.get(User, manager.id).memberships == []
