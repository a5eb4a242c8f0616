"""After the lot: the manager marks it ready, dispatched and delivered, in that order, each
step once and for good; each buyer confirms receipt or reports a problem; the farmers see
their kilograms left. Dispatch tells the buyers and farmers once; a problem tells the
managers. Everyone else: 404."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from coop.common.errors import Conflict, NotFound, ValidationFailed
from coop.extensions import db
from coop.intake import services as intake
from coop.lots import dispatch
from coop.lots import services as lots
from coop.lots.dispatch_models import LotEvent
from coop.messages.models import Message
from coop.pools.terms import local_today
from tests.support.confirm import confirm, is_confirmation

pytestmark = pytest.mark.usefixtures("stripe_clean", "ledger_sound")


@pytest.fixture
def lot(sold):
    """`sold` with two deliveries recorded (farmers 0 and 1: 50 and 100 kg); farmer 2 has
    delivered nothing and is in no lot. Buyers 0 and 1 bought it."""
    m = sold
    intake.record_intake(m.manager, m.alloc[0].id, received_kg="50", grade="sca85")
    intake.record_intake(m.manager, m.alloc[1].id, received_kg="100", grade="sca85")
    db.session.commit()
    m.lot = lots.lot_of_pool(m.pool.id)
    return m


def _dispatched(m, **kw):
    dispatch.record_step(m.manager, m.lot.id, "ready")
    fields = {"carrier": "Transportes del Cauca", "document_number": "REM-2026-0042",
              "on_date": local_today().isoformat(), **kw}
    row = dispatch.record_step(m.manager, m.lot.id, "dispatched", **fields)
    db.session.commit()
    return row


def _messages(template):
    return list(db.session.scalars(select(Message).where(Message.template == template)
                                   .order_by(Message.user_id)))


def test_the_steps_go_in_order_once_each_and_dispatch_tells_buyers_and_farmers(lot):
    m = lot
    with pytest.raises(Conflict) as refused:
        dispatch.record_step(m.manager, m.lot.id, "dispatched", carrier="X",
                             document_number="1", on_date=local_today().isoformat())
    assert refused.value.code == "step_out_of_order" and "Ready for dispatch" in \
        refused.value.message
    db.session.rollback()
    dispatch.record_step(m.manager, m.lot.id, "ready")
    db.session.commit()
    with pytest.raises(Conflict) as again:
        dispatch.record_step(m.manager, m.lot.id, "ready")
    assert again.value.code == "step_done"
    db.session.rollback()
    with pytest.raises(Conflict):
        dispatch.record_step(m.manager, m.lot.id, "delivered")
    db.session.rollback()

    # dispatched needs the carrier, the document number and a day that happened
    today = local_today()
    bad = [({"carrier": "", "document_number": "R1", "on_date": today.isoformat()}, "carrier"),
           ({"carrier": "C", "document_number": "  ", "on_date": today.isoformat()},
            "document_number"),
           ({"carrier": "C", "document_number": "R1", "on_date": ""}, "on_date"),
           ({"carrier": "C", "document_number": "R1", "on_date": "6/12/2026"}, "on_date"),
           ({"carrier": "C", "document_number": "R1",
             "on_date": (today + timedelta(days=1)).isoformat()}, "on_date"),
           ({"carrier": "C", "document_number": "R1", "on_date": "2020-01-01"}, "on_date"),
           ({"carrier": "C" * 121, "document_number": "R1", "on_date": today.isoformat()},
            "carrier"),
           ({"carrier": "C\x00", "document_number": "R1", "on_date": today.isoformat()},
            "carrier")]
    for fields, field in bad:
        with pytest.raises(ValidationFailed) as error:
            dispatch.record_step(m.manager, m.lot.id, "dispatched", **fields)
        assert list(error.value.fields) == [field], (fields, error.value.fields)
        db.session.rollback()
    assert db.session.scalar(select(func.count(LotEvent.id))) == 1  # nothing half-written

    step = dispatch.record_step(m.manager, m.lot.id, "dispatched",
                                carrier=" Transportes   del Cauca ",
                                document_number="REM-2026-0042", on_date=today.isoformat())
    db.session.commit()
    assert (step.carrier, step.document_number, step.on_date) == (
        "Transportes del Cauca", "REM-2026-0042", today)

    buyers = _messages("buyer.lot_dispatched")
    assert [x.user_id for x in buyers] == sorted(b.id for b in m.buyers)
    assert all(m.lot.code in x.body and "REM-2026-0042" in x.body for x in buyers)
    farmers = _messages("farmer.lot_dispatched")
    # the farmers in the lot, each with their own kilograms; farmer 2 delivered nothing
    assert [x.user_id for x in farmers] == [m.farmers[0].id, m.farmers[1].id]
    assert "50 kg" in farmers[0].body and "100 kg" in farmers[1].body
    dispatch._tell_dispatched(m.lot, step)  # a replay tells nobody twice
    db.session.commit()
    assert len(_messages("buyer.lot_dispatched")) == 2
    assert len(_messages("farmer.lot_dispatched")) == 2

    # delivered: not before the dispatch, not in the future; then nothing more
    with pytest.raises(ValidationFailed) as early:
        dispatch.record_step(m.manager, m.lot.id, "delivered",
                             on_date=(today - timedelta(days=1)).isoformat())
    assert list(early.value.fields) == ["on_date"]
    db.session.rollback()
    done = dispatch.record_step(m.manager, m.lot.id, "delivered")
    db.session.commit()
    assert done.on_date == today
    j = dispatch.journey(m.lot)
    assert j.stage == "delivered" and j.next_step is None
    assert [e.kind for e in j.events] == ["ready", "dispatched", "delivered"]
    with pytest.raises(Conflict):
        dispatch.record_step(m.manager, m.lot.id, "delivered")
    db.session.rollback()


def test_a_step_is_never_edited_nor_deleted(lot):
    m = lot
    row = dispatch.record_step(m.manager, m.lot.id, "ready", note="sacos cosidos")
    db.session.commit()
    row.note = "otra cosa"
    with pytest.raises(RuntimeError):
        db.session.flush()
    db.session.rollback()
    db.session.delete(db.session.get(LotEvent, row.id))
    with pytest.raises(RuntimeError):
        db.session.flush()
    db.session.rollback()
    assert db.session.get(LotEvent, row.id).note == "sacos cosidos"


def test_only_the_coops_manager_records_a_step(lot, make_coop, make_buyer):
    m = lot
    outsider = next(x.user for x in make_coop(name="Otra").memberships if x.role == "manager")
    for user in (outsider, m.buyers[0], make_buyer()):
        with pytest.raises(NotFound):
            dispatch.record_step(user, m.lot.id, "ready")
        db.session.rollback()
    from coop.common.errors import Forbidden
    # the treasurer reads the journey, does not act; nor does a farmer of the coop
    for user in (m.treasurer, m.farmers[0], m.farmers[2]):
        with pytest.raises(Forbidden):
            dispatch.record_step(user, m.lot.id, "ready")
        db.session.rollback()
    assert db.session.scalar(select(func.count(LotEvent.id))) == 0


def test_buyers_confirm_receipt_once_it_left_and_report_problems(lot, make_buyer):
    m = lot
    with pytest.raises(Conflict) as early:
        dispatch.confirm_receipt(m.buyers[0], m.lot.id)
    assert early.value.code == "not_dispatched"
    db.session.rollback()
    _dispatched(m)
    row = dispatch.confirm_receipt(m.buyers[0], m.lot.id, note="Llegó bien")
    db.session.commit()
    assert (row.kind, row.buyer_id, row.note) == ("received", m.buyers[0].buyer_id, "Llegó bien")
    with pytest.raises(Conflict):
        dispatch.confirm_receipt(m.buyers[0], m.lot.id)
    db.session.rollback()
    with pytest.raises(NotFound):
        dispatch.confirm_receipt(make_buyer(), m.lot.id)
    db.session.rollback()
    j = dispatch.journey(m.lot)
    assert set(j.receipts) == {m.buyers[0].buyer_id}

    with pytest.raises(ValidationFailed) as empty:
        dispatch.report_problem(m.buyers[1], m.lot.id, note="  ", key="k1")
    assert list(empty.value.fields) == ["note"]
    db.session.rollback()
    first = dispatch.report_problem(m.buyers[1], m.lot.id, note="Two bags wet", key="k1")
    again = dispatch.report_problem(m.buyers[1], m.lot.id, note="Two bags wet", key="k1")
    db.session.commit()
    assert first.id == again.id  # the same form sent twice is one report
    told = _messages("manager.lot_problem")
    assert [x.user_id for x in told] == [m.manager.id]
    assert "Two bags wet" in told[0].body and "Buyer 1" in told[0].body
    dispatch.report_problem(m.buyers[1], m.lot.id, note="And one missing", key="k2")
    db.session.commit()
    assert len(dispatch.journey(m.lot).problems) == 2
    assert len(_messages("manager.lot_problem")) == 2


def test_the_farmer_sees_their_own_kilograms_left(lot):
    m = lot
    mine = dispatch.farmer_journey(m.farmers[1], m.lot.id)
    assert mine.accepted_g == 100_000 and not mine.journey.on_its_way
    with pytest.raises(NotFound):
        dispatch.farmer_journey(m.farmers[2], m.lot.id)
    _dispatched(m)
    assert dispatch.farmer_journey(m.farmers[1], m.lot.id).journey.on_its_way


# ---------------------------------------------------------------- the pages

def client_as(app, user, lang="en"):
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = lang
    with client.session_transaction() as session:
        session["lang"] = lang
        if user is not None:
            session["_user_id"] = user.get_id()
            session["login_factor"] = "password"
            session["_fresh"] = True
    return client


def _csrf(client, url):
    """The page's CSRF token, when the app checks them (the test app does not)."""
    import re
    page = client.get(url).get_data(as_text=True)
    found = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    return found.group(1) if found else ""


def test_each_role_on_each_route(app, lot, make_coop, make_buyer, make_farmer):
    m = lot
    _dispatched(m)
    lot_id = m.lot.id
    outsider = next(x.user for x in make_coop(name="Otra").memberships if x.role == "manager")
    other_farmer = make_farmer(m.coop)
    people = {"visitor": None, "other buyer": make_buyer(), "other coop's manager": outsider,
              "farmer not in the lot": m.farmers[2], "another member farmer": other_farmer,
              "buyer": m.buyers[0], "farmer": m.farmers[0], "manager": m.manager,
              "treasurer": m.treasurer}
    pages = {"manage": f"/manage/lots/{lot_id}/dispatch",
             "buyer": f"/lots/{lot_id}/delivery", "journey": f"/my/lots/{lot_id}/journey"}
    expected = {  # 404 for all others; a member of the coop without the role: 403
        "manage": {"manager": 200, "treasurer": 200, "farmer": 403,
                   "farmer not in the lot": 403, "another member farmer": 403},
        "buyer": {"buyer": 200}, "journey": {"farmer": 200}}
    for who, user in people.items():
        client = client_as(app, user)
        for page, url in pages.items():
            got = client.get(url).status_code
            assert got == expected[page].get(who, 404), (who, page, got)
    # posts: outsiders 404, members without the role 403
    posts = {"mark": f"/manage/lots/{lot_id}/dispatch/delivered",
             "received": f"/lots/{lot_id}/delivery/received",
             "problem": f"/lots/{lot_id}/delivery/problem"}
    acting = {"mark": {"manager": 200, "treasurer": 403, "farmer": 403,
                       "farmer not in the lot": 403, "another member farmer": 403},
              "received": {"buyer": 200}, "problem": {"buyer": 302}}
    for who, user in people.items():
        client = client_as(app, user)
        for post, url in posts.items():
            got = client.post(url, data={"note": "x", "receipt-note": "x", "problem-note": "x",
                                         "problem-key": "k-" + who.replace(" ", "")})
            assert got.status_code == acting[post].get(who, 404), (who, post,
                                                                   got.status_code)
    # nobody but the buyer's problem was recorded (the others asked for a confirmation)
    db.session.expire_all()
    kinds = [e.kind for e in dispatch.journey(m.lot).events]
    assert kinds == ["ready", "dispatched", "problem"]


def test_the_manager_marks_the_steps_on_the_page(app, lot):
    m = lot
    client = client_as(app, m.manager)
    url = f"/manage/lots/{m.lot.id}/dispatch"
    page = client.get(url).get_data(as_text=True)
    assert "Next step: Ready for dispatch" in page and m.lot.code in page
    token = _csrf(client, url)
    # out of order (a stale page): refused with a message, nothing recorded
    stale = client.post(url + "/dispatched", data={
        "csrf_token": token, "carrier": "C", "document_number": "R",
        "on_date": local_today().isoformat()})
    assert stale.status_code == 409
    assert "mark it “Ready for dispatch” first" in stale.get_data(as_text=True)
    first = client.post(url + "/ready", data={"csrf_token": token, "note": ""})
    assert is_confirmation(first)
    assert db.session.scalar(select(func.count(LotEvent.id))) == 0
    assert confirm(client, first).status_code == 302
    page = client.get(url).get_data(as_text=True)
    assert "Next step: Dispatched" in page

    # a missing carrier: on its field, with what was typed kept
    bad = client.post(url + "/dispatched", data={
        "csrf_token": token, "carrier": "", "document_number": "REM-77",
        "on_date": local_today().isoformat(), "note": "dos camiones"})
    body = bad.get_data(as_text=True)
    assert bad.status_code == 422 and 'id="carrier-err"' in body
    assert 'value="REM-77"' in body and "dos camiones" in body
    future = client.post(url + "/dispatched", data={
        "csrf_token": token, "carrier": "Coordinadora", "document_number": "REM-77",
        "on_date": (local_today() + timedelta(days=3)).isoformat()})
    assert future.status_code == 422 and 'id="on_date-err"' in future.get_data(as_text=True)
    ask = client.post(url + "/dispatched", data={
        "csrf_token": token, "carrier": "Coordinadora", "document_number": "REM-77",
        "on_date": local_today().isoformat()})
    assert is_confirmation(ask) and "2 buyers and 2 farmers will be told" in \
        ask.get_data(as_text=True)
    # a tampered confirmation acts on nothing
    assert is_confirmation(confirm(client, ask, document_number="REM-99"))
    assert confirm(client, ask).status_code == 302
    db.session.expire_all()
    j = dispatch.journey(m.lot)
    assert j.steps["dispatched"].document_number == "REM-77"
    page = client.get(url).get_data(as_text=True)
    assert "Coordinadora" in page and "REM-77" in page and "receipt not confirmed yet" in page

    # the treasurer reads the page without a form
    treasurer = client_as(app, m.treasurer).get(url).get_data(as_text=True)
    assert "REM-77" in treasurer and 'action="/manage/lots' not in treasurer


def test_the_buyer_follows_the_lot_confirms_receipt_and_reports_a_problem(app, lot):
    m = lot
    client = client_as(app, m.buyers[0])
    url = f"/lots/{m.lot.id}/delivery"
    page = client.get(url).get_data(as_text=True)
    assert "You can confirm receipt once the lot is on its way." in page
    _dispatched(m)
    page = client.get(url).get_data(as_text=True)
    assert "Transportes del Cauca" in page and "REM-2026-0042" in page
    assert "Confirm receipt" in page
    token = _csrf(client, url)
    first = client.post(url + "/received", data={"csrf_token": token,
                                                 "receipt-note": "Todo bien"})
    assert is_confirmation(first)
    assert confirm(client, first).status_code == 302
    assert "You confirmed receipt on" in client.get(url).get_data(as_text=True)
    # a problem needs its note; what was typed stays
    import re
    key = re.search(r'name="problem-key" type="hidden" value="([^"]+)"',
                    client.get(url).get_data(as_text=True)).group(1)
    empty = client.post(url + "/problem", data={"csrf_token": token, "problem-key": key,
                                                "problem-note": ""})
    assert empty.status_code == 422 and 'id="problem-note-err"' in empty.get_data(as_text=True)
    for _twice in range(2):
        sent = client.post(url + "/problem", data={"csrf_token": token, "problem-key": key,
                                                   "problem-note": "Un saco roto"})
        assert sent.status_code == 302
    assert len(dispatch.journey(m.lot).problems) == 1
    # another buyer of the lot reads the coop's steps, never this buyer's receipt or problem
    other = client_as(app, m.buyers[1]).get(url).get_data(as_text=True)
    assert "REM-2026-0042" in other
    assert "Un saco roto" not in other and "Todo bien" not in other and "Buyer 0" not in other
    manager_page = client_as(app, m.manager).get(f"/manage/lots/{m.lot.id}/dispatch")
    text = manager_page.get_data(as_text=True)
    assert "Un saco roto" in text and "Todo bien" in text and "Buyer 0" in text


def test_the_pages_speak_spanish(app, lot):
    m = lot
    _dispatched(m)
    farmer = client_as(app, m.farmers[0], lang="es").get(f"/my/lots/{m.lot.id}/journey")
    text = farmer.get_data(as_text=True)
    assert farmer.status_code == 200
    assert "Sus 50 kg salieron de la cooperativa" in text and "Despachado" in text
    buyer = client_as(app, m.buyers[0], lang="es").get(f"/lots/{m.lot.id}/delivery")
    text = buyer.get_data(as_text=True)
    assert "Recogida en el centro de acopio (EXW)" in text and "En camino" in text
    manager = client_as(app, m.manager, lang="es").get(f"/manage/lots/{m.lot.id}/dispatch")
    text = manager.get_data(as_text=True)
    assert "Siguiente paso: Entregado" in text
    for code in ("dispatched", "ready", "forming", "EXW"):
        assert f">{code}<" not in text
    # the farmer's message in Spanish, their kilograms first
    body = db.session.scalar(select(Message.body).where(
        Message.template == "farmer.lot_dispatched", Message.user_id == m.farmers[0].id))
    assert body.startswith("Minga: sus 50 kg de")


def test_two_managers_marking_the_same_step_at_once_record_it_once(app, lot, make_user):
    """Each thread has its own connection: the lot's lock lets one record the dispatch (and
    tell people once); the others are told it is done."""
    import threading
    from coop.cooperatives.models import Membership
    m = lot
    dispatch.record_step(m.manager, m.lot.id, "ready")
    managers = [m.manager.id]
    for n in range(3):
        user = make_user(name=f"Gerente {n}")
        db.session.add(Membership(user_id=user.id, coop_id=m.coop.id, role="manager"))
        managers.append(user.id)
    db.session.commit()
    lot_id, today = m.lot.id, local_today().isoformat()
    barrier = threading.Barrier(len(managers))
    outcomes, guard = [], threading.Lock()

    def mark(user_id):
        with app.app_context():
            from coop.auth.models import User
            user = db.session.get(User, user_id)
            barrier.wait(timeout=30)
            try:
                dispatch.record_step(user, lot_id, "dispatched", carrier="C",
                                     document_number=f"R{user_id}", on_date=today)
                db.session.commit()
                result = "ok"
            except Conflict as exc:
                db.session.rollback()
                result = exc.code
            except Exception as exc:  # noqa: BLE001 - shown by the assertion
                db.session.rollback()
                result = f"error:{type(exc).__name__}:{exc}"
            finally:
                db.session.remove()
            with guard:
                outcomes.append(result)

    threads = [threading.Thread(target=mark, args=(uid,)) for uid in managers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(outcomes) == ["ok"] + ["step_done"] * (len(managers) - 1), outcomes
    db.session.expire_all()
    assert db.session.scalar(select(func.count(LotEvent.id)).where(
        LotEvent.kind == "dispatched")) == 1
    assert len(_messages("buyer.lot_dispatched")) == 2
