"""Messages in a real browser, sent by a real Celery worker to the loopback stand-ins: a
farmer who forgot her PIN gets a code by SMS, types it and a new PIN, and logs in with it."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PHONE = "+573009990011"
TYPED = "300 999 0011"          # as a farmer types it: national digits, spaces


def _phone_only_farmer(database_url: str, broker: str) -> None:
    """A farmer the manager registered by phone (no e-mail) who chose PIN 4817."""
    code = ("from coop import create_app\n"
            "from coop.auth import services as auth\n"
            "from coop.cooperatives import services as coops\n"
            "from coop.extensions import db\n"
            f"app = create_app('development', SQLALCHEMY_DATABASE_URI={database_url!r},\n"
            f"                 CELERY_BROKER_URL={broker!r})\n"
            "with app.app_context():\n"
            "    coop = coops.coop_by_slug('cooperativa-nuevo-horizonte')\n"
            "    profile = coops.add_farmer(coop, name='Rosa Quintero', email=None,\n"
            "        password='58204719', phone=" + repr(TYPED) + ", member_number='CO-0990',\n"
            "        national_id='10999011', payout_rail='nequi', payout_account='3009990011',\n"
            "        gender='female')\n"
            "    auth.set_pin(profile.user, '4817', '4817')\n"
            "    profile.user.must_set_pin = False\n"
            "    db.session.commit()\n")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_a_farmer_resets_a_forgotten_pin_with_the_sms_code_and_logs_in(phone, server):
    _phone_only_farmer(server.database_url, server.broker)
    farmer = phone()
    page = farmer.page
    farmer.goto("/login")
    farmer.step("login: forgot the PIN")
    with page.expect_navigation():
        page.click("main a[href$='/password/forgot']")
    page.fill("input[name=login]", TYPED)
    farmer.step("forgot: her phone number")
    with page.expect_navigation():
        page.click("main form button[type=submit]")
    assert page.locator("#reset-sent").count() == 1
    farmer.step("a code was sent")
    sms = server.wait_for_sms(PHONE)
    code = re.search(r"\b(\d{6})\b", sms["body"]).group(1)
    assert sms["status_callback"].endswith("/messages/status/twilio")
    page.fill("input[name=code]", code)
    page.fill("input[name=password]", "3926")
    page.fill("input[name=password_confirm]", "3926")
    farmer.step("the code and a new PIN")
    with page.expect_navigation():
        page.click("main form button[type=submit]")
    assert "/login" not in page.url and "/password" not in page.url, farmer.text()[:400]
    farmer.step("logged in with the new PIN")
    # Out, and in again with the phone and the new PIN; the old PIN no longer works.
    with page.expect_navigation():
        page.click("form[action$='/logout'] button")
    farmer.step("logged out")
    for pin, works in (("4817", False), ("3926", True)):
        farmer.goto("/login")
        farmer.step(f"login with PIN {pin}")
        page.fill("input[name=login]", TYPED)
        page.fill("input[name=password]", pin)
        with page.expect_navigation():
            page.click("main form button[type=submit]")
        assert ("/login" not in page.url) is works, (pin, page.url)
        farmer.step("the old PIN is refused" if not works else "in with phone and new PIN")
