"""No input makes a 500: every HTML form and every CSV import, fed NUL bytes, oversized text and
numbers no column holds, answers with a refusal (or does what it is for), never a 500.

A coop in full swing (a confirmed, captured pool with its intakes, an open pool with an
order, a payout batch, a bank statement and Stripe's balance lines) is crawled as each role
that works in it — farmer, buyer, manager, treasurer — and as an anonymous visitor: every
page reached by following the app's own links. Every `<form method="post">` found is posted
with each bad value in every field it has (file fields get bad CSV files); a form whose own
values lead to a confirmation step ("Yes, do it") is also confirmed with its hidden fields
tampered with the same values; a GET form (a search, a period) gets each value in its query.
Every POST route of the HTML blueprints must have been reached by some form (or DIRECT, or
be listed in NOT_ON_A_PAGE with why), so a new form is fuzzed too. At most PER_ROUTE pages
of one route are crawled (another farmer's page has the same forms), and a form is fuzzed
once per route and set of fields: about 100 pages and 450 requests.
"""
from __future__ import annotations

import io
import re
from collections import deque
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest

from coop.common.models import utcnow
from coop.extensions import db
from coop.intake import services as intake
from coop.payouts import services as payouts
from tests.support import PASSWORD
from tests.support.confirm import confirm, is_confirmation

# messages_public: an e-mail's signed unsubscribe link and the SMS provider's signed delivery
# reports, reached from no page (tests/messages posts bad tokens and signatures to them).
HTML_BLUEPRINTS_EXCLUDED = {"api", "payments", "static", "messages_public", "messages_status"}
NOT_ON_A_PAGE = {
    "auth.logout": "no input but the CSRF token; posting it would end the crawl's session",
    # JSON from the phone's outbox (static/plotcapture.js), no form: tests/plots/test_field.py
    # posts bad bodies to them.
    "plots.my_capture": "JSON from the phone's outbox, sent by static/plotcapture.js",
    "plots.field_capture": "JSON from the phone's outbox, sent by static/plotcapture.js",
    # The card page's steps, posted by static/card.js after Stripe.js (tests/pools/test_cards.py
    # and tests/e2e/test_card_entry.py post them; the busy coop has no publishable key).
    "pools.card_setup": "posted by static/card.js after Stripe.js confirmed the card",
    "pools.card_return": "posted by static/card.js after Stripe.js finished",
}
# Forms shown only in states the busy coop is not in (a suggested match, a first-login code):
# posted directly with the fields their forms have, by the role whose page shows them.
DIRECT = {
    "treasury.bank_confirm": ("treasurer", "/manage/coops/{coop}/treasury/bank/lines/1/confirm",
                              ("kind", "target_id")),
    "treasury.stripe_confirm": ("treasurer",
                                "/manage/coops/{coop}/treasury/stripe/txns/1/confirm", ()),
    # A Stripe line the ledger lacks: the import keeps only the coop's own charges' lines.
    "treasury.stripe_explain": ("treasurer",
                                "/manage/coops/{coop}/treasury/stripe/txns/1/explain", ("note",)),
    "treasury.stripe_fee": ("treasurer", "/manage/coops/{coop}/treasury/stripe/txns/1/fee", ()),
    # A parked job: the busy coop's jobs all succeed.
    "jobs.retry": ("treasurer", "/manage/coops/{coop}/jobs/1/retry", ()),
    # Card entry (a publishable key) and saved cards: states the busy coop is not in.
    "pools.card_cancel": ("buyer", "/my/orders/1/card/cancel", ()),
    "pools.remove_card": ("buyer", "/my/cards/1/remove", ()),
    "auth.choose_pin": ("farmer", "/account/pin", ("pin", "pin_confirm")),
    # Getting in without help: the login page's "send me a code" (a button's formaction),
    # the code pages that follow, a reset link's page, and a PIN account's own change of PIN.
    "auth.send_login_code": ("anonymous", "/login/code/send", ("login",)),
    "auth.login_with_code": ("anonymous", "/login/code", ("login", "code")),
    "auth.reset_with_code": ("anonymous", "/password/reset/code",
                             ("login", "code", "password", "password_confirm")),
    "auth.reset_with_link": ("anonymous", "/password/reset/" + "x" * 43,
                             ("password", "password_confirm")),
    "auth.change_pin": ("farmer", "/account/pin/change", ("current_pin", "pin",
                                                          "pin_confirm")),
    # After a change of phone or payout account was asked for: the code that confirms it.
    "auth.confirm_phone": ("farmer", "/account/phone/confirm", ("code",)),
    "coops.confirm_payout": ("manager", "/manage/coops/{coop}/farmers/1/payout/confirm",
                             ("code",)),
    # A refused coop's registration, sent again (the busy coop is verified).
    "coops.registration": ("manager", "/manage/coops/{coop}/registration",
                           ("legal_name", "tax_id")),
    # A buyer's receipt: its form shows once the lot is on its way (the busy coop's is ready).
    "dispatch.received": ("buyer", "/lots/1/delivery/received", ("note",)),
    # A link (GET) on every page; POST takes the same `next`.
    "auth.set_language": ("buyer", "/lang/en", ("next",)),
    # An invitation to a buyer organisation, answered by its addressee (the crawling buyer is
    # its organisation's admin already: an unknown link).
    "auth.organisation_accept": ("buyer", "/organisation-invitations/" + "x" * 32 + "/accept",
                                 ()),
    # The farmer's own consent: the crawling farmer has consented (its page shows the
    # withdrawal's form instead).
    "plots.my_consent": ("farmer", "/my/plots/{plot}/consent", ()),
}

BIG = "x" * 200_000
# Each is posted in every field of a form at once (wtforms checks every field).
BAD_VALUES = {
    "nul": "12\x00<b>\x1b",
    "oversized": BIG,
    "huge": "9223372036854775808",
    "overflow": "1e309",
    "other_digits": "\u0661\u0662\uff13",
    "far_date": "9999-12-31",
}

CSV_FILES = {
    "nul_in_column": "date,description,amount,reference\n2026-01-05,caf\x00e,100.00,R1\n",
    "field_over_limit": "date,description,amount,reference\n2026-01-05,\"" + "y" * 140_000
                        + "\",100.00,R1\n",
    "huge_amount": "date,description,amount,reference\n2026-01-05,x,"
                   + "9" * 30 + ",R1\n",
    "exponent_amount": "date,description,amount,reference\n2026-01-05,x,1e400,R1\n",
    "old_date": "date,description,amount,reference\n1899-01-05,x,10.00,R1\n",
    "stripe_nul": "id,type,source,amount,fee,net,currency,created\n"
                  "txn_\x001,charge,ch_1,10.00,0.50,9.50,cop,2026-01-05 10:00:00\n",
    "stripe_huge": "id,type,source,amount,fee,net,currency,created\n"
                   f"txn_1,charge,ch_1,{'9' * 30},0.00,{'9' * 30},cop,2026-01-05 10:00:00\n",
    "stripe_exponent": "id,type,source,amount,fee,net,currency,created\n"
                       "txn_2,charge,ch_2,1e400,0,1e400,cop,2026-01-05 10:00:00\n",
    "stripe_old": "id,type,source,amount,fee,net,currency,created\n"
                  "txn_3,charge,ch_3,10.00,0.00,10.00,cop,1970-01-05 10:00:00\n",
    "payout_confirmations": "line_id,status,reference\n99999999999999999999,paid,R\x001\n"
                            f"1,{'z' * 140_000},R\n",
    "not_utf8": b"date,amount\n\xff\xfe\x00,1\n",
    "binary": b"\x00" * 5000,
}

# What a person would type, to reach a confirmation step with the form's own values.
PLAUSIBLE = {"quantity_kg": "10", "received_kg": "10", "amount": "1000", "min_kg": "100",
             "max_kg": "200", "shares": "1", "note": "ok", "rail": "", "days": "3"}


class Forms(HTMLParser):
    """The forms of a page: action, method, fields [(name, type, value)], and its links."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms: list[dict] = []
        self.links: list[str] = []
        self._form = None
        self._select = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        elif tag == "form":
            self._form = {"action": a.get("action") or "", "fields": [],
                          "method": (a.get("method") or "get").lower(),
                          "multipart": "multipart" in (a.get("enctype") or "")}
            self.forms.append(self._form)
        elif self._form is not None and tag in ("input", "textarea", "button") \
                and a.get("name"):
            kind = (a.get("type") or ("textarea" if tag == "textarea" else "text")).lower()
            if tag == "button" or kind == "submit":
                kind = "submit"
            self._form["fields"].append((a["name"], kind, a.get("value") or ""))
        elif self._form is not None and tag == "select" and a.get("name"):
            self._select = [a["name"], None]
        elif self._select is not None and tag == "option" and self._select[1] is None:
            self._select[1] = a.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "select" and self._select is not None:
            self._form and self._form["fields"].append(
                (self._select[0], "select", self._select[1] or ""))
            self._select = None


PER_ROUTE = 2
SKIP_LINK = re.compile(r"^/(static/|logout|lang/|stripe/)|\.(csv|png|jpg|webp|js|json)(\?|$)"
                       r"|/photo")


def _get(client, url, failures, who):
    try:
        response = client.get(url)
    except Exception as exc:  # noqa: BLE001 - TESTING propagates: an exception is the 500
        failures.append((who, "GET", url, repr(exc)[:200]))
        return None
    if response.status_code >= 500:
        failures.append((who, "GET", url, response.status_code))
    return response


def crawl(app, client, start: list[str], failures, who, limit=120
          ) -> list[tuple[str, dict]]:
    """(page, form) for every form on the pages reachable from `start`; at most
    PER_ROUTE pages of one route (a farmer's page, another farmer's: the same forms)."""
    adapter = app.url_map.bind("localhost")
    seen, queue, found, per_route = set(), deque(start), [], {}
    while queue and len(seen) < limit:
        url = queue.popleft()
        path = urlsplit(url)
        if path.netloc and path.netloc != "localhost":
            continue
        url = path.path + (f"?{path.query}" if path.query else "")
        if url in seen or SKIP_LINK.search(url):
            continue
        try:
            endpoint = adapter.match(path.path, method="GET")[0]
        except Exception:  # noqa: BLE001 - a redirect or a 404: requested all the same
            endpoint = path.path
        route = (endpoint, tuple(sorted(k.split("=")[0] for k in path.query.split("&") if k)))
        if per_route.get(route, 0) >= PER_ROUTE:
            continue
        per_route[route] = per_route.get(route, 0) + 1
        seen.add(url)
        response = _get(client, url, failures, who)
        if response is None or response.status_code != 200 \
                or "text/html" not in response.content_type:
            continue
        parser = Forms()
        parser.feed(response.get_data(as_text=True))
        for form in parser.forms:
            found.append((url, form))
        queue.extend(link for link in parser.links if link.startswith("/"))
    return found


def _payload(form, value=None, file_body=None):
    data: dict = {}
    for name, kind, default in form["fields"]:
        if name == "csrf_token":
            data[name] = default
        elif kind == "file":
            body = file_body if file_body is not None else b""
            body = body.encode() if isinstance(body, str) else body
            data[name] = (io.BytesIO(body), "bad.csv")
        elif kind == "submit":
            data.setdefault(name, default)
        elif value is None:
            data.setdefault(name, default or PLAUSIBLE.get(name, default))
        else:
            data[name] = value
    return data


def _post(client, action, data, failures, who, what, multipart):
    try:
        response = client.post(action, data=data,
                               content_type="multipart/form-data" if multipart else None)
    except Exception as exc:  # noqa: BLE001
        failures.append((who, action, what, repr(exc)[:300]))
        return None
    if response.status_code >= 500:
        failures.append((who, action, what, response.status_code))
    return response


def fuzz_search(client, page, form, failures, who):
    """A GET form (a search, a period): each bad value in every field of its query."""
    action = urlsplit(form["action"] or page).path
    for what, value in BAD_VALUES.items():
        query = {name: (default if kind == "submit" else value)
                 for name, kind, default in form["fields"]}
        try:
            response = client.get(action, query_string=query)
        except Exception as exc:  # noqa: BLE001
            failures.append((who, "GET", action, what, repr(exc)[:300]))
            continue
        if response.status_code >= 500:
            failures.append((who, "GET", action, what, response.status_code))


def fuzz_form(client, page, form, failures, who):
    action = form["action"] or page
    multipart = form["multipart"] or any(k == "file" for _n, k, _d in form["fields"])
    files = [n for n, k, _d in form["fields"] if k == "file"]
    if files:
        for what, body in CSV_FILES.items():
            _post(client, action, _payload(form, file_body=body), failures, who,
                  f"file:{what}", True)
    for what, value in BAD_VALUES.items():
        _post(client, action, _payload(form, value, b"a,b\n1,2\n"), failures, who, what,
              multipart)
    # The form with its own (or plausible) values; a confirmation step is confirmed with
    # each bad value in every hidden field it carries.
    first = _post(client, action, _payload(form, None, b"a,b\n1,2\n"), failures, who,
                  "plausible", multipart)
    if first is not None and is_confirmation(first):
        page_html = first.get_data(as_text=True)
        hidden = set(re.findall(r'<input type="hidden" name="([^"]+)"', page_html))
        hidden -= {"csrf_token", "confirm_token"}
        for what in ("nul", "oversized", "huge", "overflow"):
            try:
                response = confirm(client, first, **{name: BAD_VALUES[what] for name in hidden})
            except Exception as exc:  # noqa: BLE001
                failures.append((who, action, f"confirm:{what}", repr(exc)[:300]))
                continue
            if response.status_code >= 500:
                failures.append((who, action, f"confirm:{what}", response.status_code))
    return action


def _rule_of(app, action):
    adapter = app.url_map.bind("localhost")
    try:
        endpoint, _args = adapter.match(urlsplit(action).path, method="POST")
    except Exception:  # noqa: BLE001
        return None
    return endpoint


@pytest.fixture
def busy_coop(sold, make_listing, make_user, make_coop):
    """`sold` with an intake recorded (a shortfall refunded), a payout batch, an open pool
    with an order, a bank statement and Stripe's balance lines."""
    from coop.pools import services as pools
    from coop.treasury import bank_statement, stripe_reconciliation
    m = sold
    intake.record_intake(m.manager, m.alloc[0].id, received_kg="40", grade="sca85")
    intake.record_intake(m.manager, m.alloc[1].id, received_kg="100", grade="sca85")
    db.session.commit()
    payouts.create_batch(m.coop, m.treasurer)
    db.session.commit()
    pool = m.open_pool(min_kg="50", max_kg="300")
    pools.place_order(m.buyers[0], pool.id, quantity_kg="20", payment_method="pm_card_visa")
    db.session.commit()
    make_listing(m.farmers[0], kg="30")  # one no pool needs: editable, withdrawable
    stripe_reconciliation.pull_stripe(m.coop, m.treasurer)
    today = utcnow().date().isoformat()
    stripe_reconciliation.import_stripe_csv(m.coop, m.treasurer, io.BytesIO(
        "id,type,source,amount,fee,net,currency,created\n"
        f"txn_fuzz1,charge,ch_unknown,100.00,0.00,100.00,cop,{today} 10:00:00\n"
        f"txn_fuzz2,stripe_fee,,-5.00,0.00,-5.00,cop,{today} 10:00:00\n".encode()))
    bank_statement.import_bank_statement(m.coop, m.treasurer, io.BytesIO(
        f"date,description,amount,reference\n{today},fee,-10.00,\n"
        f"{today},transfer,250.00,unknown\n".encode()))
    # Invitations waiting: the buyer's (accept, decline; the manager's withdraw, renew) and a
    # new person's, whose link asks for an account; Minga's staff with a coop to review.
    from coop.cooperatives import invitations
    from coop.staff import services as staff
    invitations.invite(m.coop, m.manager, "treasurer", email=m.buyers[0].email)
    _invitation, m.new_person_link = invitations.invite(m.coop, m.manager, "manager",
                                                        email="nueva@example.org")
    # Colleagues invited to the buyer's organisation: one link's account form for the
    # anonymous visitor (a fuzzed value may be a good password: it then joins), one pending
    # for the admin's withdraw form.
    from coop.auth import organisations
    _invitation, m.colleague_link = organisations.invite(m.buyers[0],
                                                         email="colega@example.org",
                                                         role="purchaser")
    organisations.invite(m.buyers[0], email="contable@example.org", role="accounts")
    m.staff = make_user(name="Staff")
    staff.grant(m.staff.email)
    m.pending = make_coop(pending=True)
    # Plots (issue 13): both farmers have consented. The crawling farmer's own plot page has
    # the withdrawal's form, and its fuzz (no hidden field to tamper) withdraws it: the
    # manager then finds one farmer without consent (the paper consent's form) and one with
    # (the withdrawal's form). The farmer's own consent form is posted directly (DIRECT).
    from sqlalchemy import select
    from coop.cooperatives.models import FarmerProfile
    from coop.plots import services as plots
    for n, farmer in enumerate(m.farmers[:2]):
        profile = db.session.scalar(select(FarmerProfile).where(
            FarmerProfile.user_id == farmer.id, FarmerProfile.coop_id == m.coop.id))
        plot = plots.add_plot(profile, name=f"Parcela {n}", hectares="1.5",
                              replaced_crop=None, illicit_hectares="0")
        if n == 0:
            m.farmer_plot = plot.id
        else:  # the manager starts on it: the withdrawal's form, whatever the crawl's budget
            m.consenting_plot = (profile.id, plot.id)
        plots.record_consent(profile, by=m.manager, locale="es")
    db.session.commit()
    # The lot's journey (issue 13 part 4): ready, so the manager's page shows the dispatch's
    # form (carrier, document number, date) and the buyers' the problem's.
    from coop.lots import dispatch
    from coop.lots import services as lots
    m.lot = lots.lot_of_pool(m.pool.id)
    dispatch.record_step(m.manager, m.lot.id, "ready")
    m.lot_id = m.lot.id
    db.session.commit()
    return m


def _client_as(app, user):
    client = app.test_client()
    if user is not None:
        response = client.post("/login", data={"login": user.email, "password": PASSWORD})
        assert response.status_code == 302
    return client


def test_no_form_and_no_csv_import_answers_500(app, busy_coop):
    m = busy_coop
    coop = m.coop.id
    # The manager goes last: among the forms are "revoke the treasurer's role" and others.
    app.test_client().post("/api/v1/auth/tokens", json={  # listed on the account page
        "email": m.farmers[0].email, "password": PASSWORD})
    actors = {
        "anonymous": (None, ["/", "/login", "/signup", "/pools", "/coops",
                             f"/invitations/{m.new_person_link}",
                             f"/organisation-invitations/{m.colleague_link}"]),
        "farmer": (m.farmers[0], ["/", "/listings", "/listings/new", "/my/deliveries",
                                  "/my/payments", "/my/statements", "/my/shares",
                                  "/account", f"/my/lots/{m.lot.id}/journey"]),
        "buyer": (m.buyers[0], ["/", "/pools", "/my/orders", "/account", "/invitations",
                                "/account/organisation",
                                f"/lots/{m.lot.id}/delivery",
                                f"/lots/{m.lot_id}/eudr"]),
        "staff": (m.staff, ["/staff/coops", f"/staff/coops/{m.pending.id}"]),
        "treasurer": (m.treasurer, ["/manage", f"/manage/coops/{coop}/treasury/reconciliation",
                                    f"/manage/coops/{coop}/treasury/costs",
                                    f"/manage/coops/{coop}/payables",
                                    f"/manage/coops/{coop}/shares",
                                    f"/manage/lots/{m.lot.id}/dispatch"]),
        "manager": (m.manager, ["/manage", f"/manage/coops/{coop}",
                                "/manage/coops/{}/farmers/{}/plots/{}".format(
                                    coop, *m.consenting_plot),
                                f"/manage/lots/{m.lot.id}/dispatch",
                                f"/manage/coops/{coop}/farmers/new",
                                f"/manage/coops/{coop}/members"]),
    }
    failures: list = []
    reached: set = set()
    from coop.extensions import limiter
    clients = {who: _client_as(app, user) for who, (user, _start) in actors.items()}
    for who, (_user, start) in actors.items():
        client = clients[who]
        limiter.reset()  # the login form's fuzz counts as attempts
        forms = crawl(app, client, start, failures, who)
        done = set()
        for page, form in forms:
            action = form["action"] or page
            names = tuple(sorted(n for n, _k, _d in form["fields"]))
            endpoint = _rule_of(app, action)
            # One form per route and set of fields (farmers/1/plots and farmers/2/plots alike).
            if (endpoint or action, names) in done or action.startswith("/logout"):
                continue
            done.add((endpoint or action, names))
            if form.get("method") == "get":
                fuzz_search(client, page, form, failures, who)
                continue
            if endpoint:
                reached.add(endpoint)
            fuzz_form(client, page, form, failures, who)
            db.session.rollback()
    for endpoint, (who, url, names) in DIRECT.items():
        form = {"action": url.format(coop=coop, plot=m.farmer_plot), "multipart": False,
                "fields": [(name, "text", "") for name in names]}
        fuzz_form(clients[who], form["action"], form, failures, who)
        reached.add(endpoint)
    assert not failures, "\n".join(repr(f)[:400] for f in failures)
    post_routes = {rule.endpoint for rule in app.url_map.iter_rules()
                   if "POST" in (rule.methods or ())
                   and rule.endpoint.split(".")[0] not in HTML_BLUEPRINTS_EXCLUDED}
    missing = sorted(post_routes - reached - set(NOT_ON_A_PAGE))
    assert not missing, " ".join(missing) + " reached: " + " ".join(sorted(reached))
