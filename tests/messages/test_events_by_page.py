"""Events driven through the pages, as users do: a manager closes a pool (its farmers are
told what sold, its buyers what was charged) or cancels one (the holds released); each
person reads it in their own language, whatever the manager's page speaks; pressing the
button again tells nobody twice."""
from __future__ import annotations

from sqlalchemy import select

from coop.extensions import db
from coop.messages.models import Message
from coop.pools import services as pools
from tests.support.confirm import post_confirmed
from tests.support.intake import VISA


def _told(user, template) -> list[Message]:
    return list(db.session.scalars(select(Message).where(
        Message.user_id == user.id, Message.template == template).order_by(Message.id)))


def _manager_client(app, user):
    """The manager's browser reads English: the messages do not follow it."""
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    with client.session_transaction() as session:
        session["lang"] = "en"
        session["_user_id"] = user.get_id()
        session["login_factor"] = "password"
    return client


def test_a_manager_closing_a_pool_tells_farmers_in_spanish_and_an_english_buyer_in_english(
        app, market, stripe_clean):
    m = market
    english, spanish = m.buyers
    english.locale, spanish.locale = "en", "es"
    db.session.commit()
    pool = m.open_pool(min_kg="100", max_kg="500")
    pools.place_order(english, pool.id, quantity_kg="200", payment_method=VISA)
    pools.place_order(spanish, pool.id, quantity_kg="100", payment_method=VISA)
    client = _manager_client(app, m.manager)
    assert post_confirmed(client, f"/manage/pools/{pool.id}/close").status_code == 302
    post_confirmed(client, f"/manage/pools/{pool.id}/close")          # pressed again
    db.session.expire_all()
    [charged] = _told(english, "buyer.captured")
    assert charged.locale == "en" and charged.status == "sent"
    assert charged.body.startswith(f"Minga: pool #{pool.id} is confirmed. COP6,408,000.00 "
                                   "taken from your card for 200 kg at COP32,040.00 per kg.")
    [cobrado] = _told(spanish, "buyer.captured")
    assert cobrado.locale == "es_CO"
    assert cobrado.body.replace("\xa0", " ").startswith(
        f"Minga: el pedido conjunto #{pool.id} está confirmado. Cobramos 3.204.000,00 COP a "
        "su tarjeta por 100 kg a 32.040,00 COP el kg.")
    sold = [_told(f, "farmer.harvest_sold") for f in m.farmers]
    assert [len(s) for s in sold] == [1, 1, 1]
    assert all(s[0].locale == "es_CO" and "se vendieron" in s[0].body for s in sold)
    assert [s[0].body.split(" kg")[0] for s in sold] == \
        ["Minga: se vendieron 50", "Minga: se vendieron 100", "Minga: se vendieron 150"]


def test_a_manager_cancelling_a_pool_tells_each_buyer_the_hold_is_released(app, market,
                                                                           stripe_clean):
    m = market
    m.buyers[0].locale = "es"
    db.session.commit()
    pool = m.open_pool(min_kg="100", max_kg="500")
    pools.place_order(m.buyers[0], pool.id, quantity_kg="40", payment_method=VISA)
    client = _manager_client(app, m.manager)
    assert post_confirmed(client, f"/manage/pools/{pool.id}/cancel").status_code == 302
    post_confirmed(client, f"/manage/pools/{pool.id}/cancel")
    db.session.expire_all()
    [released] = _told(m.buyers[0], "buyer.released")
    assert released.body.replace("\xa0", " ").startswith(
        f"Minga: el pedido conjunto #{pool.id} no se completó. La retención de "
        "1.281.600,00 COP en su tarjeta queda liberada; no se cobra nada.")
    assert released.link == "http://minga.test/my/orders"
    assert _told(m.buyers[0], "buyer.captured") == []
    assert [m_ for f in m.farmers for m_ in _told(f, "farmer.harvest_sold")] == []
