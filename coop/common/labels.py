"""What a person reads for an internal code (a status, a rail, a kind, an account...).

Each domain keeps its labels in its own `labels.py` (a dict of lazy_gettext strings per kind
of code) and lists them in LABELS; templates read them through one filter,
`{{ order.status | label("order_status") }}`, and Python through `label(code, "order_status")`.

A code with no label is a bug: under TESTING it raises UnknownLabel, so that a test that
renders the page fails; in production it is logged and shown humanised ("missing_ledger" ->
"Missing ledger") rather than breaking the page.
"""
from __future__ import annotations

import importlib
from collections.abc import Mapping

from flask import current_app, has_app_context

# kind of code -> "module:attribute" of the dict that holds its labels
LABELS = {
    "role": "coop.cooperatives.labels:ROLES",
    "contact_channel": "coop.auth.labels:CONTACT_CHANNELS",
    "buyer_role": "coop.auth.labels:BUYER_ROLES",
    "rail": "coop.cooperatives.labels:RAILS",
    "gender": "coop.cooperatives.labels:GENDERS",
    "illicit_crop": "coop.cooperatives.labels:ILLICIT_CROPS",
    "coop_status": "coop.cooperatives.labels:COOP_STATUS",
    "crop": "coop.catalog.labels:CROPS",
    "grade": "coop.catalog.labels:GRADES",
    "listing_status": "coop.listings.labels:LISTING_STATUS",
    "pool_status": "coop.pools.labels:POOL_STATUS",
    "order_status": "coop.pools.labels:ORDER_STATUS",
    "delivery_terms": "coop.pools.labels:DELIVERY_TERMS",
    "lot_event": "coop.lots.dispatch_labels:EVENT_KINDS",
    "lot_stage": "coop.lots.dispatch_labels:STAGES",
    "commission_kind": "coop.pricing.labels:COMMISSION_KINDS",
    "refund_status": "coop.intake.labels:REFUND_STATUS",
    "refund_reason": "coop.intake.labels:REFUND_REASONS",
    "payout_line_status": "coop.payouts.labels:LINE_STATUS",
    "payout_batch_status": "coop.payouts.labels:BATCH_STATUS",
    "share_status": "coop.shares.labels:SHARE_STATUS",
    "document_kind": "coop.invoices.labels:DOCUMENT_KINDS",
    "person_id_type": "coop.invoices.labels:PERSON_ID_TYPES",
    "share_movement": "coop.shares.labels:MOVEMENT_KINDS",
    "account": "coop.ledger.labels:ACCOUNTS",
    "account_kind": "coop.ledger.labels:ACCOUNT_KINDS",
    "entry_kind": "coop.ledger.labels:ENTRY_KINDS",
    "entry_status": "coop.ledger.labels:ENTRY_STATUS",
    "audit_action": "coop.audit.labels:AUDIT_ACTIONS",
    "audit_object": "coop.audit.labels:AUDIT_OBJECTS",
    "audit_field": "coop.audit.labels:AUDIT_FIELDS",
    "stripe_txn_type": "coop.treasury.labels:STRIPE_TXN_TYPES",
    "stripe_txn_status": "coop.treasury.labels:STRIPE_TXN_STATUS",
    "bank_line_status": "coop.treasury.labels:BANK_LINE_STATUS",
    "bank_match_kind": "coop.treasury.labels:BANK_MATCH_KINDS",
    "message_status": "coop.messages.labels:MESSAGE_STATUS",
    "channel": "coop.messages.labels:CHANNELS",
    "message_topic": "coop.messages.labels:TOPICS",
    "job_task": "coop.jobs.labels:TASKS",
    "plot_geometry_kind": "coop.plots.labels:GEOMETRY_KINDS",
    "plot_geometry_source": "coop.plots.labels:GEOMETRY_SOURCES",
    "plot_land_use": "coop.plots.labels:LAND_USES",
    "plot_evidence_kind": "coop.plots.labels:EVIDENCE_KINDS",
    "plot_tenure_type": "coop.plots.labels:TENURE_TYPES",
    "plot_version_change": "coop.plots.labels:VERSION_CHANGES",
}

_loaded: dict[str, Mapping] = {}


class UnknownLabel(LookupError):
    pass


def labels(kind: str) -> Mapping:
    """The dict of labels of one kind of code."""
    table = _loaded.get(kind)
    if table is None:
        if kind not in LABELS:
            raise UnknownLabel(f"no labels for {kind!r}")
        module, _sep, attribute = LABELS[kind].partition(":")
        table = getattr(importlib.import_module(module), attribute)
        _loaded[kind] = table
    return table


def has_label(code, kind: str) -> bool:
    return code is not None and str(code) in labels(kind)


def label(code, kind: str) -> str:
    """The reader's words for `code`; "" for no code."""
    if code is None or code == "":
        return ""
    table = labels(kind)
    key = str(code)
    if key in table:
        return str(table[key])
    if ":" in key and key.partition(":")[0] in table:  # per-person account "farmer_payable:12"
        return str(table[key.partition(":")[0]])
    if has_app_context() and current_app.testing:
        raise UnknownLabel(f"no {kind} label for {key!r}: add it to {LABELS[kind]}")
    if has_app_context():
        current_app.logger.warning("no %s label for %r", kind, key)
    return key.replace("_", " ").replace(".", " · ").capitalize()


def choices(kind: str, codes=None) -> list[tuple[str, str]]:
    """(code, label) pairs for a select, in the order of `codes` (default: the dict's)."""
    table = labels(kind)
    return [(code, table[code]) for code in (codes if codes is not None else table)]
