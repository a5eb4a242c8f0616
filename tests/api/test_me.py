"""GET and PATCH /api/v1/me: the person behind the token, their preferences; bad input is 422
with the API's error shape, and a token only ever sees and changes its own person."""
from __future__ import annotations

import pytest

from coop.auth.models import User
from coop.extensions import db
from tests.support.auth import pin_farmer


def test_me_returns_the_person_with_phone_in_e164_and_memberships(client, make_coop,
                                                                  make_farmer, token):
    coop = make_coop(name="Cooperativa Me", country="PE", currency="PEN")
    farmer = make_farmer(coop, phone="987 654 321")
    response = client.get("/api/v1/me", headers=token(farmer))
    assert response.status_code == 200
    body = response.json
    assert body["id"] == farmer.id and body["email"] == farmer.email
    assert body["phone"] == "+51987654321"
    assert (body["language"], body["channel"], body["channel_used"]) == ("es", None, "email")
    assert (body["timezone"], body["timezone_used"]) == (None, "America/Lima")
    assert body["announcements"] is False
    assert body["memberships"] == [{"coop_id": coop.id, "coop_name": "Cooperativa Me",
                                    "role": "farmer"}]


def test_patch_me_changes_only_the_callers_preferences(client, make_user, token):
    me, other = make_user(phone="3001112233"), make_user()
    headers = token(me)
    response = client.patch("/api/v1/me", headers=headers, json={
        "name": "Nuevo Nombre", "language": "en", "channel": "whatsapp",
        "timezone": "America/Lima", "announcements": True})
    assert response.status_code == 200
    assert (response.json["name"], response.json["channel_used"],
            response.json["timezone_used"]) == ("Nuevo Nombre", "whatsapp", "America/Lima")
    db.session.expire_all()
    saved, untouched = db.session.get(User, me.id), db.session.get(User, other.id)
    assert (saved.locale, saved.channel, saved.announcements) == ("en", "whatsapp", True)
    assert (untouched.name, untouched.channel, untouched.announcements) == (
        "Test Person", None, False)
    # null puts the default back.
    response = client.patch("/api/v1/me", headers=headers,
                            json={"channel": None, "timezone": None})
    assert (response.json["channel"], response.json["timezone"]) == (None, None)
    # Another person's token sees that person only.
    assert client.get("/api/v1/me", headers=token(other)).json["id"] == other.id


@pytest.mark.parametrize("body, field", [
    ({"channel": "sms"}, "channel"),            # no phone on file
    ({"channel": "fax"}, "channel"),
    ({"channel": 3}, "channel"),
    ({"timezone": "Nowhere/Else"}, "timezone"),
    ({"language": "de"}, "language"),
    ({"language": None}, "language"),
    ({"name": ""}, "name"),
    ({"name": 5}, "name"),
    ({"announcements": "true"}, "announcements"),
    ({"email": "new@example.org"}, "email"),    # not editable here
    ({"phone": "+573001112233"}, "phone"),      # a phone changes with a code, on the page
])
def test_bad_patches_are_422_with_the_field_and_change_nothing(client, make_user, token,
                                                               body, field):
    me = make_user()
    response = client.patch("/api/v1/me", headers=token(me),
                            json={"announcements": True, **body}
                            if field != "announcements" else body)
    assert response.status_code == 422, response.json
    error = response.json["error"]
    assert set(error) == {"code", "message", "fields"} and field in error["fields"]
    db.session.expire_all()
    assert db.session.get(User, me.id).announcements is False


def test_me_needs_a_token_and_a_json_object(client, make_user, token):
    assert client.get("/api/v1/me").status_code == 401
    assert client.patch("/api/v1/me", json={"name": "X"}).status_code == 401
    assert client.get("/api/v1/me", headers={"Authorization": "Bearer nope"}
                      ).status_code == 401
    headers = token(make_user())
    assert client.patch("/api/v1/me", headers=headers, data="{",
                        content_type="application/json").status_code == 400
    assert client.patch("/api/v1/me", headers=headers, json=[1]).status_code == 422


def test_a_pin_farmer_without_email_reads_me(client, make_coop):
    farmer = pin_farmer(make_coop(), phone="3105550166").user
    response = client.post("/api/v1/auth/tokens", json={"email": "3105550166",
                                                       "password": "4831"})
    assert response.status_code == 201
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {response.json['token']}"})
    assert me.json["email"] is None and me.json["phone"] == "+573105550166"
    assert me.json["channel_used"] == "sms" and me.json["id"] == farmer.id


def test_me_is_in_the_openapi_document(client):
    doc = client.get("/api/v1/openapi.json").json
    assert {"get", "patch"} <= set(doc["paths"]["/me"])
    assert "Me" in doc["components"]["schemas"]
