"""The ledger's read side, the audit log and the coop's money policy have one owner each:
nobody outside coop/ledger/ imports the ledger's models (they ask coop.ledger.queries),
and reading the money policy never writes it (a GET page commits nothing)."""
from __future__ import annotations

import ast
import pathlib

from sqlalchemy import func, select

from coop.audit.models import AuditEvent
from coop.cooperatives import finance
from coop.cooperatives.models import FinanceSettings
from coop.extensions import db
from coop.ledger import queries as ledger_queries
from coop.ledger import services as ledger

COOP = pathlib.Path(__file__).resolve().parents[2] / "coop"
LEDGER_MODELS = {"LedgerEntry", "LedgerPosting", "LedgerAccount"}


def _ledger_model_imports(path: pathlib.Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            names = {a.name for a in node.names}
            if names & LEDGER_MODELS:
                found.append(f"{path.relative_to(COOP.parent)}:{node.lineno}")
        elif isinstance(node, ast.Attribute) and node.attr in LEDGER_MODELS:
            found.append(f"{path.relative_to(COOP.parent)}:{node.lineno}")
    return found


def test_no_module_outside_the_ledger_reads_its_models():
    offenders = [hit for path in sorted(COOP.rglob("*.py"))
                 if COOP / "ledger" not in path.parents
                 for hit in _ledger_model_imports(path)]
    assert offenders == []


def test_the_scan_finds_an_import():
    probe = COOP / "ledger" / "queries.py"  # inside the ledger: it may, and it does
    assert _ledger_model_imports(probe)


def _policy_rows() -> int:
    return db.session.scalar(select(func.count()).select_from(FinanceSettings))


def test_reading_the_policy_writes_nothing(make_coop):
    coop = make_coop()
    conf = finance.settings(coop)
    assert (conf.advance_bps, conf.share_par_minor, conf.reserve_bps, conf.education_bps,
            conf.solidarity_bps, conf.patronage_cash_bps) == (0, 0, 2000, 2000, 1000, 5000)
    assert conf not in db.session
    db.session.commit()
    assert _policy_rows() == 0


def test_get_pages_do_not_create_the_policy(make_coop, make_user, login):
    treasurer = make_user(name="Tesorera")
    coop = make_coop(treasurer=treasurer)
    client = login(treasurer)
    for page in ("shares", "shares/settings", "treasury/year-end"):
        assert client.get(f"/manage/coops/{coop.id}/{page}").status_code == 200, page
    assert _policy_rows() == 0
    saved = client.post(f"/manage/coops/{coop.id}/shares/settings",
                        data={"par_value": "60000", "min_shares": "3",
                              "withholding_pct": "7,5", "advance_pct": "20"})
    assert saved.status_code == 302
    db.session.expire_all()
    assert _policy_rows() == 1
    assert finance.settings(coop).advance_bps == 2000
    assert db.session.scalar(select(AuditEvent.action).where(
        AuditEvent.coop_id == coop.id, AuditEvent.action.not_like("roles.%"))) \
        == "finance.settings"  # after the founding's roles granted


def test_refused_settings_write_nothing(make_coop, make_user, login):
    treasurer = make_user(name="Tesorera")
    coop = make_coop(treasurer=treasurer)
    client = login(treasurer)
    bad = client.post(f"/manage/coops/{coop.id}/shares/settings",
                      data={"par_value": "60000", "min_shares": "3",
                            "withholding_pct": "150", "advance_pct": "20"})
    assert bad.status_code == 422
    assert _policy_rows() == 0


def test_queries_read_what_the_ledger_posted(make_coop):
    coop = make_coop()
    assert ledger_queries.account_id(coop, "bank") is None
    assert ledger_queries.debit_balance(coop, "bank") == 0
    entry = ledger.post(coop, key="cost-1", kind="operating_cost", external_ref="ref-1",
                        lines=[ledger.debit("operating_costs", 700),
                               ledger.credit("bank", 700)])
    bank = ledger_queries.account_id(coop, "bank")
    assert ledger_queries.debit_balance(coop, "bank") == -700
    assert ledger_queries.sum_on_account(entry.id, bank) == -700
    assert ledger_queries.first_by_ref_through(coop, "ref-1", bank) == entry.id
    assert ledger_queries.first_by_ref_through(coop, "ref-2", bank) is None
    assert ledger_queries.entry_id_by_key(coop, "cost-1") == entry.id
    assert ledger_queries.entries_by_id([entry.id]) == {entry.id: entry}
    assert ledger_queries.last_debits(coop, "operating_cost", "operating_costs", 5) == [700]
    year = entry.effective_on.year
    sums = ledger_queries.income_and_expense_sums(
        coop, entry.effective_on.replace(month=1, day=1, hour=0),
        entry.effective_on.replace(year=year + 1, month=1, day=1, hour=0), ())
    assert [(code, total) for code, _n, _k, total in sums] == [("operating_costs", 700)]
