"""Errors that services raise; views turn them into a message, the API into JSON."""
from __future__ import annotations


class DomainError(Exception):
    """A rule refused the request. `code` is the API's snake_case code."""

    status = 422
    code = "invalid"

    def __init__(self, message: str, code: str | None = None, fields: dict | None = None,
                 status: int | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status:
            self.status = status
        self.fields = fields or {}


class ValidationFailed(DomainError):
    status = 422
    code = "validation_failed"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class PaymentDeclined(DomainError):
    status = 402
    code = "payment_declined"
