"""A cooperative's registration and its review by the platform's staff.

A new cooperative is pending: it may set itself up (members, collection points, prices,
listings) but opens no pool and moves no money (`require_verified`) until the platform's staff
approve its registration: legal name, tax id (Colombia's NIT and Peru's RUC with their mod-11
check digit; elsewhere a non-empty id), country and a document (a PDF, or a photo of the
registration re-encoded like a listing's photo). Names (case and accents aside) and tax ids
are unique per country. Staff refuse with a reason; the founder sees it and may correct and
ask again. Every decision is audited and told to the founder (`notify_founder`)."""
from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ..audit import services as audit
from ..common.errors import Conflict, Forbidden, NotFound, ValidationFailed
from ..common.models import utcnow
from ..common.statuses import CoopStatus, may_move
from ..extensions import db
from .models import CoopDocument, Cooperative, Membership

# A founder may wait for at most this many cooperatives at once (pending or refused).
MAX_UNVERIFIED_PER_FOUNDER = 3
MAX_DOCUMENT_BYTES = 10 * 1024 * 1024  # as a photo; the request's own limit is 11 MB
DOCUMENT_TYPES = ("application/pdf", "image/webp")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def name_key(name: str) -> str:
    """The name as compared for uniqueness: accents, case, punctuation and spacing aside
    ("Cooperativa  Café-Sur" and "cooperativa cafe sur" are one name)."""
    text = unicodedata.normalize("NFKD", name or "")
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    return re.sub(r"[\W_]+", " ", text).strip()[:160]


# ---------------------------------------------------------------- tax ids

_NIT_WEIGHTS = (3, 7, 13, 17, 19, 23, 29, 37, 41, 43, 47, 53, 59, 67, 71)
_RUC_WEIGHTS = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


def nit_check_digit(base: str) -> int:
    """Colombia's NIT check digit (DIAN, mod 11): weights 3, 7, 13, 17... from the right."""
    total = sum(int(d) * w for d, w in zip(reversed(base), _NIT_WEIGHTS))
    rest = total % 11
    return rest if rest in (0, 1) else 11 - rest


def ruc_check_digit(first_ten: str) -> int:
    """Peru's RUC check digit (SUNAT, mod 11): weights 5, 4, 3, 2, 7, 6, 5, 4, 3, 2."""
    total = sum(int(d) * w for d, w in zip(first_ten, _RUC_WEIGHTS))
    digit = 11 - total % 11
    return {10: 0, 11: 1}.get(digit, digit)


def _refuse_tax_id(message: str) -> ValidationFailed:
    return ValidationFailed(message, code="invalid_tax_id", fields={"tax_id": [message]})


def normalise_tax_id(country: str, raw: str) -> str:
    """The tax id as stored: a NIT as "900123456-7", a RUC as 11 digits, other countries'
    ids trimmed and upper-cased. Refuses a wrong check digit."""
    text = (raw or "").strip() if isinstance(raw, str) else ""
    if not text:
        raise _refuse_tax_id(_("Give the cooperative's tax id."))
    if len(text) > 32 or _CONTROL.search(text):
        raise _refuse_tax_id(_("A tax id has at most 32 characters."))
    if country == "CO":
        match = re.fullmatch(r"(\d{1,3}(?:\.\d{3})+|\d{6,15})\s*-?\s*(\d)", text)
        base = match.group(1).replace(".", "") if match else ""
        if not match or not 6 <= len(base) <= 15:
            raise _refuse_tax_id(_("Write the NIT with its check digit, like 900123456-7."))
        if nit_check_digit(base) != int(match.group(2)):
            raise _refuse_tax_id(_("The NIT's check digit is wrong: check the number."))
        return f"{base}-{match.group(2)}"
    if country == "PE":
        digits = re.sub(r"[\s-]", "", text)
        if not re.fullmatch(r"(10|15|16|17|20)\d{9}", digits):
            raise _refuse_tax_id(_("A RUC has 11 digits and starts with 10, 15, 16, 17 or 20."))
        if ruc_check_digit(digits[:10]) != int(digits[10]):
            raise _refuse_tax_id(_("The RUC's check digit is wrong: check the number."))
        return digits
    return " ".join(text.split()).upper()


# ---------------------------------------------------------------- the document

@dataclass
class Upload:
    """A file as a form or the API received it."""
    filename: str
    data: bytes


def _refuse_document(message: str) -> ValidationFailed:
    return ValidationFailed(message, code="invalid_document", fields={"document": [message]})


def clean_document(upload: Upload | None, missing: str) -> tuple[str, bytes, str]:
    """(file name, bytes, content type) of an uploaded document: a PDF as sent, or a photo
    re-encoded without its metadata (the listing photos' rules: bombs, EXIF). Refuses no file
    (`missing`), more than 10 MB, anything else (ValidationFailed on `document`)."""
    if upload is None or not upload.data:
        raise _refuse_document(missing)
    limit = MAX_DOCUMENT_BYTES
    if len(upload.data) > limit:
        raise _refuse_document(_("The document is larger than %(mb)d MB.",
                                 mb=limit // (1024 * 1024)))
    name = re.sub(r"[^\w.\- ]+", "_", (upload.filename or "document").rsplit("/", 1)[-1])
    name = name.strip()[:120] or "document"
    if upload.data.startswith(b"%PDF-"):
        return name, upload.data, "application/pdf"
    from ..listings.photos import process_photo
    try:
        photo = process_photo(upload.data)
    except ValidationFailed:
        raise _refuse_document(_("Send the document as a PDF, or a JPEG, PNG or WebP "
                                 "photo of it."))
    return name, photo.data, photo.content_type


def _document_row(coop: Cooperative, upload: Upload | None, user) -> CoopDocument:
    name, data, content_type = clean_document(
        upload, _("Attach the registration document (PDF or photo)."))
    return CoopDocument(coop_id=coop.id, filename=name, content_type=content_type,
                        size=len(data), digest=hashlib.sha256(data).hexdigest(), data=data,
                        uploaded_by_id=getattr(user, "id", None))


def latest_document(coop: Cooperative) -> CoopDocument | None:
    return db.session.scalar(select(CoopDocument).where(CoopDocument.coop_id == coop.id)
                             .order_by(CoopDocument.id.desc()).limit(1))


def get_document(coop: Cooperative, document_id: int) -> CoopDocument:
    doc = db.session.get(CoopDocument, document_id)
    if doc is None or doc.coop_id != coop.id:
        raise NotFound(_("No such document."))
    return doc


# ---------------------------------------------------------------- registration

def check_registration(coop: Cooperative, *, name: str, country: str, legal_name: str,
                       tax_id: str, exclude_id: int | None = None) -> tuple[str, str, str]:
    """(name key, legal name, tax id) once checked: required, the check digit, and no other
    cooperative of the country with the same name (case and accents aside) or tax id."""
    fields = {}
    legal = " ".join((legal_name or "").split()) if isinstance(legal_name, str) else ""
    if not legal:
        fields["legal_name"] = [_("Required.")]
    elif len(legal) > 200 or _CONTROL.search(legal_name):
        fields["legal_name"] = [_("At most 200 characters.")]
    try:
        tax = normalise_tax_id(country, tax_id)
    except ValidationFailed as exc:
        fields.update(exc.fields)
        tax = None
    if fields:
        raise ValidationFailed(_("Check the cooperative's registration."), fields=fields)
    key = name_key(name)
    check_unique(country, key, tax, exclude_id)
    return key, legal, tax


def check_unique(country: str, key: str | None, tax_id: str | None,
                 exclude_id: int | None = None) -> None:
    def taken(column, value):
        if value is None:
            return False
        stmt = select(Cooperative.id).where(Cooperative.country == country, column == value)
        if exclude_id is not None:
            stmt = stmt.where(Cooperative.id != exclude_id)
        return db.session.scalar(stmt.limit(1)) is not None
    if taken(Cooperative.name_key, key):
        raise Conflict(_("A cooperative of that name already exists in this country."),
                       code="coop_name_taken", fields={"name": [_("Already used.")]})
    if taken(Cooperative.tax_id, tax_id):
        raise Conflict(_("A cooperative with that tax id already exists in this country."),
                       code="tax_id_taken", fields={"tax_id": [_("Already registered.")]})


def saved(coop: Cooperative) -> None:
    """Flush the coop; two founders racing for one name or tax id: the database decides."""
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError:
        raise Conflict(_("A cooperative of that name or tax id already exists in this "
                         "country."), code="coop_name_taken",
                       fields={"name": [_("Already used.")]})


def check_founder_limit(founder) -> None:
    waiting = db.session.scalar(select(func.count()).select_from(Cooperative).where(
        Cooperative.founded_by_id == founder.id,
        Cooperative.status.in_((CoopStatus.PENDING, CoopStatus.REFUSED))))
    if waiting >= MAX_UNVERIFIED_PER_FOUNDER:
        raise Conflict(_("You already have %(n)d cooperatives waiting for verification. Wait "
                         "for their review first.", n=waiting), code="too_many_pending")


def submit_document(coop: Cooperative, upload: Upload | None, user) -> CoopDocument:
    doc = _document_row(coop, upload, user)
    db.session.add(doc)
    return doc


def resubmit(coop: Cooperative, user, *, legal_name: str, tax_id: str,
             document: Upload | None) -> Cooperative:
    """A refused cooperative, corrected by its manager, waits for review again."""
    if coop.status != CoopStatus.REFUSED:
        raise Conflict(_("Only a refused cooperative can ask again."), code="not_refused")
    _key, legal, tax = check_registration(coop, name=coop.name, country=coop.country,
                                       legal_name=legal_name, tax_id=tax_id,
                                       exclude_id=coop.id)
    submit_document(coop, document, user)
    coop.legal_name, coop.tax_id = legal, tax
    coop.status, coop.submitted_at = CoopStatus.PENDING, utcnow()
    saved(coop)
    audit.record(coop.id, user, "coop.submitted", "coop", coop.id,
                 after={"status": CoopStatus.PENDING})
    return coop


def is_verified(coop: Cooperative) -> bool:
    return coop.status == CoopStatus.VERIFIED


def require_verified(coop: Cooperative) -> None:
    """Refuses what a pending (or refused) cooperative may not do: open a pool, move money."""
    if coop.status != CoopStatus.VERIFIED:
        raise Conflict(_("This cooperative is waiting for Minga's staff to verify its "
                         "registration: it cannot open pools or move money yet."),
                       code="coop_not_verified")


# ---------------------------------------------------------------- the staff's review

def coops_to_review() -> list[Cooperative]:
    return list(db.session.scalars(select(Cooperative).where(
        Cooperative.status == CoopStatus.PENDING).order_by(Cooperative.submitted_at,
                                                            Cooperative.id)))


def recently_reviewed(limit: int = 50) -> list[Cooperative]:
    return list(db.session.scalars(select(Cooperative).where(
        Cooperative.reviewed_at.is_not(None)).order_by(Cooperative.reviewed_at.desc())
        .limit(limit)))


def _reviewable(coop: Cooperative, reviewer) -> None:
    if db.session.scalar(select(Membership.id).where(
            Membership.coop_id == coop.id, Membership.user_id == reviewer.id).limit(1)):
        raise Forbidden(_("You belong to this cooperative: another member of staff reviews "
                          "it."), code="own_coop")
    if coop.status != CoopStatus.PENDING:
        raise Conflict(_("This cooperative is not waiting for review."), code="not_pending")


def approve(coop: Cooperative, reviewer) -> Cooperative:
    """Staff (the caller checked the role) verify the coop: it may now open pools."""
    _reviewable(coop, reviewer)
    if latest_document(coop) is None:
        raise Conflict(_("There is no registration document to check."), code="no_document")
    _decide(coop, reviewer, CoopStatus.VERIFIED, "")
    return coop


def refuse(coop: Cooperative, reviewer, reason: str) -> Cooperative:
    """Staff refuse the registration with a reason the founder reads."""
    reason = " ".join((reason or "").split()) if isinstance(reason, str) else ""
    if not reason or len(reason) > 500 or _CONTROL.search(reason.replace("\n", " ")):
        raise ValidationFailed(_("Say why, in at most 500 characters."),
                               fields={"reason": [_("Required, at most 500 characters.")]})
    _reviewable(coop, reviewer)
    _decide(coop, reviewer, CoopStatus.REFUSED, reason)
    return coop


def _decide(coop: Cooperative, reviewer, status: CoopStatus, reason: str) -> None:
    assert may_move(CoopStatus(coop.status), status)
    coop.status, coop.refusal_reason = status, reason
    coop.reviewed_at, coop.reviewed_by_id = utcnow(), reviewer.id
    db.session.flush()
    audit.record(coop.id, reviewer, "coop.verified" if status == CoopStatus.VERIFIED
                 else "coop.refused", "coop", coop.id,
                 after={"status": status, "reason": reason or None})
    notify_founder(coop)


def notify_founder(coop: Cooperative) -> None:
    """Tell the founder the staff's decision (e-mail or SMS, in their language): the one place
    a decision is told. One message per decision (a refused coop asking again is decided
    again, and told again)."""
    from ..messages import services as messages
    if coop.founded_by_id is None:
        return
    stamp = coop.reviewed_at.strftime("%Y%m%d%H%M%S%f") if coop.reviewed_at else "0"
    if coop.status == CoopStatus.VERIFIED:
        messages.notify(coop.founded_by_id, "coop.verified", event=f"coop:{coop.id}:{stamp}",
                        coop_id=coop.id, coop=coop.name, link=f"/manage/coops/{coop.id}")
    else:
        messages.notify(coop.founded_by_id, "coop.refused", event=f"coop:{coop.id}:{stamp}",
                        coop_id=coop.id, coop=coop.name, reason=coop.refusal_reason or "",
                        link=f"/manage/coops/{coop.id}")
