"""Putting a service's refusal back on the form, so the user sees why and keeps their input."""
from __future__ import annotations

from flask import flash

from .errors import DomainError


def apply_error(form, exc: DomainError) -> None:
    placed = False
    for name, problems in (exc.fields or {}).items():
        field = getattr(form, name, None)
        if field is not None and hasattr(field, "errors"):
            field.errors = list(field.errors or []) + [str(p) for p in problems]
            placed = True
    if not placed or exc.message:
        flash(exc.message, "error")
