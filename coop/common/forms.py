"""The base of every HTML form, and putting a service's refusal back on the form, so the user
sees why and keeps their input."""
from __future__ import annotations

import re
import threading

from flask import current_app, flash, request
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms.validators import Length

from .errors import DomainError

# Control characters nobody types in a text box: NUL (which PostgreSQL cannot store in a
# text column) and the other C0 and C1 controls. Tab, line feed and carriage return are
# typed (a textarea sends "\r\n") and stay.
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def has_control(text) -> bool:
    """Text (or a list of texts) that holds a control character no person types."""
    if isinstance(text, (list, tuple)):
        return any(has_control(t) for t in text)
    return isinstance(text, str) and CONTROL.search(text) is not None


def filter_text(value, max_chars: int = 160) -> str:
    """A search or filter from a page's query string: "" (no filter, as for any junk) when it
    holds a control character, which no name has and PostgreSQL cannot even compare."""
    text = value if isinstance(value, str) else ""
    return "" if has_control(text) else text[:max_chars]


MAX_TEXT = 10_000  # characters in one field: ten times the longest note a form takes

# WTForms' own messages ("This field is required.") per locale, read once per process:
# Flask-WTF reads the catalog's .mo file again on every request that makes a form (~0.7 ms).
_WTFORMS_CATALOGS: dict = {}
_catalogs_lock = threading.Lock()


def _wtforms_translations():
    from babel import support
    from flask_babel import get_locale
    from wtforms.i18n import messages_path
    locale = get_locale()
    key = str(locale)
    found = _WTFORMS_CATALOGS.get(key)
    if found is None:
        found = support.Translations.load(messages_path(), [locale], domain="wtforms")
        with _catalogs_lock:
            found = _WTFORMS_CATALOGS.setdefault(key, found)
    return found


class Form(FlaskForm):
    """Every HTML form's base. Before any of a field's own checks (or a service) sees what
    was typed, a field is refused, on that field, when its text
    - holds a control character (NUL and the like): "Remove the control characters...";
    - is longer than MAX_TEXT characters (a field's own Length says less; this one keeps
      slow checks, such as an e-mail address's, from ever reading 200 KB).
    The form is then not valid, so the view answers with the form again and its 422, as for
    any other refusal. A field that takes a pasted file names itself in LONG_FIELDS; file
    fields are left to their readers (the CSV imports check their own rows)."""

    CONTROL_MESSAGE = _l("Remove the control characters (such as NUL) from this field.")
    LONG_FIELDS: tuple = ()

    class Meta(FlaskForm.Meta):
        def get_translations(self, form):
            """Flask-WTF's catalog in the request's locale, the same one, kept per process."""
            if (not request or not current_app.config.get("WTF_I18N_ENABLED", True)
                    or "babel" not in current_app.extensions):
                return super().get_translations(form)
            return _wtforms_translations()

    def typed_problem(self, name, field):
        raw = [v for v in (field.raw_data or []) if isinstance(v, str)]
        if not raw:
            return None
        if has_control(raw):
            return self.CONTROL_MESSAGE
        if name not in self.LONG_FIELDS and any(len(v) > MAX_TEXT for v in raw):
            # Said as the field's own Length would (its maximum), else with MAX_TEXT.
            limit = next((v.max for v in field.validators
                          if isinstance(v, Length) and v.max is not None and v.max >= 0), None)
            if limit is not None:
                return field.gettext("Field cannot be longer than %(max)d characters.") \
                    % {"max": limit}
            return _l("That is too long: at most %(n)d characters.", n=MAX_TEXT)
        return None

    def validate(self, extra_validators=None):
        """wtforms' Form.validate (inline `validate_<name>` methods included), with the
        typed text checked first."""
        extra = dict(extra_validators or {})
        for name in self._fields:
            inline = getattr(self.__class__, f"validate_{name}", None)
            if inline is not None:
                extra[name] = list(extra.get(name, ())) + [inline]
        valid = True
        for name, field in self._fields.items():
            problem = self.typed_problem(name, field)
            if problem is not None:
                field.errors = [problem]
                valid = False
            elif not field.validate(self, extra.get(name, ())):
                valid = False
        return valid


def apply_error(form, exc: DomainError) -> None:
    placed = False
    for name, problems in (exc.fields or {}).items():
        field = getattr(form, name, None)
        if field is not None and hasattr(field, "errors"):
            field.errors = list(field.errors or []) + [str(p) for p in problems]
            placed = True
    if not placed or exc.message:
        flash(exc.message, "error")
