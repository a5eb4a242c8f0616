"""What people type and upload, at its edges: control characters and over-long text refused on
the field (coop/common/forms.py), amounts and numbers with a stated maximum (money.py,
numbers.py), whole numbers and dates only as people write them (numbers.parse_whole,
dates.py), CSV rows refused by line and column (csvfiles.py)."""
from __future__ import annotations

import io
import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from coop.common import dates
from coop.common.errors import ValidationFailed
from coop.common.money import MAX_MAJOR, AmountTooLarge, parse_major
from coop.common.numbers import MAX_NUMBER, NumberInputError, parse_number, parse_whole
from coop.cooperatives.models import FarmerProfile
from coop.extensions import db
from coop.ledger.models import LedgerEntry
from coop.listings.models import Listing
from coop.payouts.csv_formats import parse_confirmations
from coop.treasury import bank_statement, stripe_reconciliation
from coop.treasury.models import BankStatementLine, StripeBalanceTxn


@pytest.fixture
def en(client):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


@pytest.fixture
def treasury(make_coop, make_user, login, en):
    treasurer = make_user()
    coop = make_coop(treasurer=treasurer)
    login(treasurer)
    return coop, treasurer


def count(model, *where) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _cost(client, coop, **changes):
    data = {"amount": "12500", "spent_on": date.today().isoformat(),
            "description": "Transporte", "key": uuid.uuid4().hex, **changes}
    return client.post(f"/manage/coops/{coop.id}/treasury/costs", data=data)


def _operating_costs() -> int:
    return count(LedgerEntry, LedgerEntry.kind == "operating_cost")


# ---------------------------------------------------------------- control characters, length

@pytest.mark.parametrize("field,value", [
    ("description", "Transporte\x00"), ("description", "caf\x1be"),
    ("reference", "REF\x00-1"), ("description", "x\x7f"), ("description", "\x85next line"),
])
def test_a_control_character_in_a_form_field_is_refused_on_that_field(en, treasury, field,
                                                                      value):
    coop, _ = treasury
    response = _cost(en, coop, **{field: value})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Remove the control characters (such as NUL) from this field." in page
    assert _operating_costs() == 0
    # The other fields keep what was typed.
    assert 'value="12500"' in page


def test_tabs_and_line_breaks_are_typed_text(en, make_user, login, make_coop, make_farmer):
    coop = make_coop()
    farmer = make_farmer(coop)
    login(farmer)
    response = en.post("/my/listings/new", data={
        "product": "coffee/sca85", "quantity_kg": "100",
        # Yesterday: the machine's date can be a day ahead of the coop's (Colombia is UTC-5,
        # and a harvest picked "tomorrow" there is refused).
        "harvested_on": (date.today() - timedelta(days=1)).isoformat(),
        "collection_point": "Vereda El Tambo", "notes": "Seco\r\n\tbien"})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    assert db.session.scalar(select(Listing.notes)) == "Seco\r\n\tbien"


def test_nul_on_the_signup_and_login_forms(en):
    response = en.post("/signup", data={"organisation": "Tostadores\x00", "email":
                                        "a@example.org", "password": "a-long-password-1"})
    assert response.status_code == 422
    assert "Remove the control characters" in response.get_data(as_text=True)
    response = en.post("/login", data={"login": "a\x00@example.org", "password": "x"})
    assert response.status_code in (401, 422)


def test_200_kb_in_a_field_is_refused_before_its_own_checks(en, monkeypatch):
    """The e-mail check alone took about 2 s on 200 KB; the form refuses the length first,
    in the words of the field's own Length, and never runs the e-mail check."""
    import wtforms.validators
    checked = []
    original = wtforms.validators.Email.__call__
    monkeypatch.setattr(wtforms.validators.Email, "__call__",
                        lambda self, form, field: checked.append(field.name)
                        or original(self, form, field))
    response = en.post("/signup", data={"organisation": "T", "email": "a" * 200_000 + "@x.org",
                                        "password": "a-long-password-1"})
    assert response.status_code == 422
    assert "Field cannot be longer than 254 characters." in response.get_data(as_text=True)
    assert checked == []
    response = en.post("/manage/coops/new", data={"name": "n" * 200_000})
    assert response.status_code in (302, 422)  # anonymous: to the login page


# ---------------------------------------------------------------- amounts and numbers

@pytest.mark.parametrize("typed", ["9223372036854775808", "9" * 30, "1e309", "1e3", "+5",
                                   "\u0661\u0662", "\uff11\uff12", "10000000000000"])
def test_an_amount_beyond_the_maximum_or_not_typed_in_the_locale_is_refused(en, treasury,
                                                                             typed):
    coop, _ = treasury
    response = _cost(en, coop, amount=typed)
    assert response.status_code == 422
    assert _operating_costs() == 0


def test_the_maximum_amount_is_said(en, treasury):
    coop, _ = treasury
    for typed in ("9223372036854775808", "2000000000000"):
        response = _cost(en, coop, amount=typed)
        page = response.get_data(as_text=True)
        assert response.status_code == 422
        assert "The amount is too large: at most" in page and "1,000,000,000,000.00" in page


def test_parse_major_says_the_maximum_in_the_currency():
    assert parse_major(Decimal(MAX_MAJOR), "COP") == MAX_MAJOR * 100
    with pytest.raises(AmountTooLarge) as refused:
        parse_major(Decimal(MAX_MAJOR) + 1, "COP")
    assert "1,000,000,000,000.00" in refused.value.message
    for text in ("9" * 30, "-" + "9" * 30):
        with pytest.raises(ValueError):
            parse_major(text, "COP", locale="en")
    with pytest.raises(ValueError):
        parse_major(Decimal("1e400"), "COP")


def test_parse_number_has_a_maximum():
    assert parse_number("1000000000000000", "en") == MAX_NUMBER
    with pytest.raises(NumberInputError):
        parse_number("1000000000000001", "en")


@pytest.mark.parametrize("text", ["+5", "1e3", "12.0", "\u0665", "\uff15", "", None, True,
                                  "1" * 19, " ", Decimal("1.5"), Decimal("Infinity")])
def test_parse_whole_refuses_what_people_do_not_type(text):
    with pytest.raises(ValueError):
        parse_whole(text)


def test_parse_whole_reads_whole_numbers():
    assert [parse_whole(v) for v in ("12", "-3", " 7 ", 4, Decimal("1200"))] == \
        [12, -3, 7, 4, 1200]


@pytest.mark.parametrize("size", ["+5", "\u0665", "\uff15", "5.0", "1e1"])
def test_a_household_size_only_in_ascii_digits(en, login, make_coop, size):
    coop = make_coop()
    login(coop.memberships[0].user)
    response = en.post(f"/manage/coops/{coop.id}/farmers/new", data={
        "name": "María Quispe", "email": "maria@example.org", "phone": "+57 311 555 0101",
        "password": "first-password-1", "member_number": "NH-0001",
        "national_id": "1087654321", "gender": "female", "household_size": size,
        "payout_rail": "nequi", "payout_account": "311 555 0101", "bank_name": ""})
    assert response.status_code == 422
    assert count(FarmerProfile) == 0


# ---------------------------------------------------------------- dates

def test_typed_dates_lie_between_2000_and_the_end_of_next_year():
    today = date(2026, 6, 1)
    assert dates.parse_date("2000-01-01", today) == date(2000, 1, 1)
    assert dates.parse_date("2027-12-31", today) == date(2027, 12, 31)
    for text in ("1999-12-31", "2028-01-01", "9999-12-31", "0001-01-01", "20260102",
                 "2026-W01-1", "\uff12\uff10\uff12\uff16-01-02", "2026-1-2", "", None):
        with pytest.raises(dates.DateInputError):
            dates.parse_date(text, today)


@pytest.mark.parametrize("day", ["1999-12-31", "9999-12-31", "0001-01-01"])
def test_a_cost_dated_outside_the_range_is_refused(en, treasury, day):
    coop, _ = treasury
    response = _cost(en, coop, spent_on=day)
    assert response.status_code == 422
    assert "Give a date between 2000-01-01 and" in response.get_data(as_text=True)
    assert _operating_costs() == 0


# ---------------------------------------------------------------- CSV imports

BANK_HEADER = "date,description,amount,reference\n"


def _bank(coop, user, text):
    return bank_statement.import_bank_statement(coop, user, io.BytesIO(text.encode()))


def _refusal(call) -> list[str]:
    with pytest.raises(ValidationFailed) as refused:
        call()
    assert refused.value.status == 422
    db.session.rollback()
    return [str(p) for p in refused.value.fields["file"]]


def test_bank_csv_rows_with_nul_huge_amounts_or_odd_dates_are_refused_by_line(treasury):
    coop, user = treasury
    today = date.today().isoformat()
    problems = _refusal(lambda: _bank(coop, user, BANK_HEADER
                                      + f"{today},ok,10.00,R0\n"
                                      + f"{today},caf\x00e,10.00,R1\n"
                                      + f"{today},x,{'9' * 30},R2\n"
                                      + f"{today},x,1e400,R3\n"
                                      + "1999-12-31,x,10.00,R4\n"
                                      + f"\uff12\uff10\uff12\uff16-01-02,x,10.00,R5\n"))
    assert problems[0] == "Line 3: a control character (such as NUL) in column description."
    assert problems[1].startswith("Line 4: The amount is too large: at most ")
    assert problems[2].startswith("Line 5: ")
    assert problems[3].startswith("Line 6: Give a date between 2000-01-01")
    assert problems[4].startswith("Line 7: Give the date as YYYY-MM-DD")
    assert count(BankStatementLine) == 0


def test_a_csv_field_over_the_limit_is_refused_naming_the_line(treasury):
    coop, user = treasury
    today = date.today().isoformat()
    problems = _refusal(lambda: _bank(coop, user, BANK_HEADER + f"{today},a,1.00,R\n"
                                      + f'{today},"{"y" * 140_000}",1.00,R\n'))
    assert problems == ["Line 3: a field is longer than 131072 characters."]
    assert count(BankStatementLine) == 0


def test_a_nul_in_the_header_is_refused(treasury):
    coop, user = treasury
    problems = _refusal(lambda: _bank(coop, user, "date,amo\x00unt\n2026-01-01,1\n"))
    assert problems and problems[0].startswith("Line 1:")


STRIPE_HEADER = "id,type,source,amount,fee,net,currency,created\n"


def test_stripe_csv_rows_with_nul_huge_amounts_or_odd_dates_are_refused_by_line(treasury):
    coop, user = treasury
    now = f"{date.today().isoformat()} 10:00:00"
    big = "9" * 30

    def run():
        return stripe_reconciliation.import_stripe_csv(coop, user, io.BytesIO((
            STRIPE_HEADER
            + f"txn_\x001,charge,ch_1,10.00,0.50,9.50,cop,{now}\n"
            + f"txn_2,charge,ch_2,{big},0.00,{big},cop,{now}\n"
            + f"txn_3,charge,ch_3,1e400,0,1e400,cop,{now}\n"
            + "txn_4,charge,ch_4,10.00,0.00,10.00,cop,1970-01-05 10:00:00\n"
            + "txn_5,charge,ch_5,10.00,0.00,10.00,cop,\u0661\u0662\u0663\n").encode()))
    problems = _refusal(run)
    assert problems[0] == "Line 2: a control character (such as NUL) in column id."
    assert problems[1].startswith("Line 3: The amount is too large: at most ")
    assert problems[2].startswith("Line 4: ")
    assert problems[3].startswith("Line 5: Give a date between 2000-01-01")
    assert problems[4].startswith("Line 6: ")
    assert count(StripeBalanceTxn) == 0


def test_the_import_pages_flash_the_refusal(en, treasury):
    coop, _ = treasury
    body = BANK_HEADER + f'{date.today().isoformat()},"{"y" * 140_000}",1.00,R\n'
    response = en.post(f"/manage/coops/{coop.id}/treasury/bank/import",
                       data={"file": (io.BytesIO(body.encode()), "bank.csv")},
                       content_type="multipart/form-data", follow_redirects=True)
    assert response.status_code == 200
    assert "Line 2: a field is longer than 131072 characters." in response.get_data(as_text=True)


def test_payout_confirmations_name_the_row_of_a_nul_and_of_an_impossible_line_id():
    problems = _refusal(lambda: parse_confirmations("line_id,status,reference\n1,paid,R1\n"
                                                    "2,paid,R\x002\n"))
    assert problems == ["Row 3: a NUL character; the file is not a text CSV file."]
    problems = _refusal(lambda: parse_confirmations("line_id,status,reference\n"
                                                    "2147483648,paid,R1\n"))
    assert problems == ["Row 2: line_id '2147483648' is not a line number."]


def test_a_control_character_in_a_search_is_junk_ignored(en, login, make_coop, make_farmer):
    """PostgreSQL refused to compare a name with "ana\x00": a 500. Junk in a filter is
    ignored, as the supply page's crop filter always did."""
    coop = make_coop()
    make_farmer(coop, name="Ana")
    login(coop.memberships[0].user)
    for path in (f"/manage/coops/{coop.id}?q=ana%00", f"/manage/coops/{coop.id}?rail=%1b",
                 f"/manage/coops/{coop.id}?q=%00&rail=cash%00"):
        response = en.get(path)
        assert response.status_code == 200, path
        assert "Ana" in response.get_data(as_text=True)
