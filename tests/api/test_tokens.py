"""API tokens (issue 10 §4): a program lists its account's tokens, revokes the one it holds
(`DELETE /api/v1/auth/tokens/current`, a logout) or any other of its own by id; the account
page lists and revokes them too; a change of password (or PIN) ends them all. Another
person's token id is a 404, like an unknown one."""
from __future__ import annotations

from sqlalchemy import func, select

from coop.auth.models import ApiToken
from coop.extensions import db
from tests.support import PASSWORD


def _tokens(user) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(ApiToken)
                             .where(ApiToken.user_id == user.id))


def test_a_program_lists_its_tokens_and_revokes_the_current_one(client, make_user, token):
    user = make_user()
    first, second = token(user), token(user)
    listed = client.get("/api/v1/auth/tokens", headers=second)
    assert listed.status_code == 200
    items = listed.json["items"]
    assert len(items) == 2 and {"id", "created_at", "expires_at", "current"} <= set(items[0])
    assert [i["current"] for i in items] == [True, False]  # newest first: this request's
    assert "token" not in items[0] and "token_hash" not in items[0]
    assert listed.headers["Cache-Control"] == "no-store"
    response = client.delete("/api/v1/auth/tokens/current", headers=second)
    assert response.status_code == 204 and response.data == b""
    assert client.get("/api/v1/auth/tokens", headers=second).status_code == 401
    assert client.delete("/api/v1/auth/tokens/current", headers=second).status_code == 401
    assert client.get("/api/v1/auth/tokens", headers=first).json["items"][0]["current"]


def test_a_token_is_revoked_by_id_by_its_owner_only(client, make_user, token):
    user, other = make_user(), make_user()
    mine, theirs = token(user), token(other)
    their_id = client.get("/api/v1/auth/tokens", headers=theirs).json["items"][0]["id"]
    for token_id in (their_id, 999_999, 2**31, 2**63):
        response = client.delete(f"/api/v1/auth/tokens/{token_id}", headers=mine)
        assert response.status_code == 404, token_id
        assert response.json["error"]["code"] in ("token_not_found", "not_found")
    assert _tokens(other) == 1
    spare = token(user)
    spare_id = client.get("/api/v1/auth/tokens", headers=spare).json["items"][0]["id"]
    assert client.delete(f"/api/v1/auth/tokens/{spare_id}", headers=mine).status_code == 204
    assert client.get("/api/v1/auth/tokens", headers=spare).status_code == 401
    assert client.get("/api/v1/auth/tokens", headers=mine).status_code == 200
    assert client.get("/api/v1/auth/tokens").status_code == 401


def test_a_change_of_password_ends_every_token(client, make_user, token, login):
    user = make_user()
    held = token(user)
    assert client.get("/api/v1/auth/tokens", headers=held).status_code == 200
    login(user)
    new = "a-brand-new-long-secret"
    assert client.post("/account/password", data={
        "current_password": PASSWORD, "new_password": new,
        "new_password_confirm": new}).status_code == 302
    assert _tokens(user) == 0
    assert client.get("/api/v1/auth/tokens", headers=held).status_code == 401


def test_the_account_page_lists_and_revokes_tokens(client, make_user, token, login):
    user, other = make_user(), make_user()
    held = token(user)
    theirs = token(other)
    login(user)
    client.get("/lang/en")
    page = client.get("/account").get_data(as_text=True)
    ids = [t.id for t in db.session.scalars(select(ApiToken).where(ApiToken.user_id == user.id))]
    assert len(ids) == 1 and f"/account/tokens/{ids[0]}/revoke" in page
    their_id = db.session.scalar(select(ApiToken.id).where(ApiToken.user_id == other.id))
    assert f"/account/tokens/{their_id}/revoke" not in page
    assert client.post(f"/account/tokens/{their_id}/revoke").status_code == 404
    assert client.get("/api/v1/auth/tokens", headers=theirs).status_code == 200
    response = client.post(f"/account/tokens/{ids[0]}/revoke")
    assert response.status_code == 302
    assert client.get("/api/v1/auth/tokens", headers=held).status_code == 401
    assert "No API tokens" in client.get("/account").get_data(as_text=True)


def test_the_openapi_document_describes_the_token_endpoints(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    assert set(paths["/auth/tokens"]) == {"get", "post"}
    assert "204" in paths["/auth/tokens/current"]["delete"]["responses"]
    assert {"204", "401", "404"} <= set(paths["/auth/tokens/{id}"]["delete"]["responses"])
    listed = paths["/auth/tokens"]["get"]["responses"]["200"]["content"]["application/json"]
    assert listed["schema"]["properties"]["items"]["items"] == {
        "$ref": "#/components/schemas/TokenInfo"}
