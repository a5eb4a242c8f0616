"""The buyer's currency (issue 14, part 3): exchange rates from the source the platform
configures (MINGA_FX_SOURCE), stored per day, and indicative amounts computed from them.

Only ever indicative: a card is charged, and an invoice issued, in the coop's currency. A
rate older than MINGA_FX_MAX_AGE_DAYS is no rate (no conversion is shown rather than a stale
one). Rates are exact decimals (Decimal from the source's text), never floats.

Source formats, told apart by their first character (see README, "The buyer's currency"):
- the ECB's daily reference rates, `eurofxref-daily.xml` (or its 90-day file): XML
  `<Cube time="YYYY-MM-DD"><Cube currency="USD" rate="1.0512"/>...` (1 EUR = rate);
- JSON: `{"date": "YYYY-MM-DD", "base": "EUR", "rates": {"USD": "1.0512", "COP": "4512.3"}}`,
  or a list of such objects (any pairs: COP and PEN are not among the ECB's currencies);
- CSV with a header `date,base,quote,rate`, one pair a line.
"""
from __future__ import annotations

import csv
import io
import json
import urllib.request
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select

from ..common import refcache
from ..common.errors import DomainError, ValidationFailed
from ..common.models import utcnow
from ..extensions import db
from .models import ExchangeRate

# What a buyer may choose to see beside the coop's price (None: the coop's own currency).
DISPLAY_CURRENCIES = ("EUR", "USD")
CACHE = "fx"
MAX_SOURCE_BYTES = 2 * 1024 * 1024
MAX_RATE = Decimal(10) ** 12


class RatesUnavailable(DomainError):
    """The source could not be read or understood; nothing was stored."""
    status = 502
    code = "fx_source_failed"

    def __init__(self, message: str):
        super().__init__(message, code=self.code)


@dataclass(frozen=True)
class Rate:
    """One published rate: 1 `base` = `rate` `quote` on `day`."""
    day: date
    base: str
    quote: str
    rate: Decimal


@dataclass(frozen=True)
class Indicative:
    """An amount shown for information in another currency: `amount_minor` of `currency`,
    converted from `from_minor` of `from_currency` at `rate` (1 from = rate to) of `on`."""
    amount_minor: int
    currency: str
    from_minor: int
    from_currency: str
    rate: Decimal
    on: date

    @property
    def readable_rate(self) -> tuple[str, Decimal, str]:
        """(a, x, b) for "1 a = x b", the way round that reads as a number above 1."""
        if self.rate >= 1:
            return self.from_currency, self.rate, self.currency
        with localcontext() as ctx:
            ctx.prec = 28
            return self.currency, (Decimal(1) / self.rate), self.from_currency


# ---------------------------------------------------------------- reading a source

def _code(text, what: str) -> str:
    code = (text or "").strip().upper()
    if len(code) != 3 or not code.isascii() or not code.isalpha():
        raise RatesUnavailable(_("The rates source has an unknown currency code: %(code)s.",
                                 code=str(text)[:10]))
    return code


def _rate(text) -> Decimal:
    try:
        value = text if isinstance(text, Decimal) else Decimal(str(text).strip())
    except (InvalidOperation, ValueError):
        raise RatesUnavailable(_("The rates source has a rate that is not a number."))
    if not value.is_finite() or value <= 0 or value > MAX_RATE:
        raise RatesUnavailable(_("The rates source has a rate that is not a number."))
    return value


def _day(text) -> date:
    try:
        return date.fromisoformat(str(text).strip()[:10])
    except ValueError:
        raise RatesUnavailable(_("The rates source has a date that is not YYYY-MM-DD."))


def parse(payload: bytes | str) -> list[Rate]:
    """The rates in a source's text (ECB XML, JSON or CSV: see the module's docstring).
    Refuses (RatesUnavailable) what it cannot read; a pair of one currency with itself is
    skipped."""
    text = payload.decode("utf-8-sig") if isinstance(payload, bytes) else payload
    text = text.lstrip("\ufeff").strip()
    if not text:
        raise RatesUnavailable(_("The rates source is empty."))
    if text[0] == "<":
        rates = _parse_ecb(text)
    elif text[0] in "{[":
        rates = _parse_json(text)
    else:
        rates = _parse_csv(text)
    return [r for r in rates if r.base != r.quote]


def _parse_ecb(text: str) -> list[Rate]:
    import xml.etree.ElementTree as ET
    if "<!DOCTYPE" in text.upper() or "<!ENTITY" in text.upper():
        raise RatesUnavailable(_("The rates source is not the ECB's format."))
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        raise RatesUnavailable(_("The rates source is not the ECB's format."))
    out = []
    for cube in root.iter():
        if cube.tag.rsplit("}", 1)[-1] != "Cube" or "time" not in cube.attrib:
            continue
        day = _day(cube.attrib["time"])
        for child in cube:
            if "currency" in child.attrib and "rate" in child.attrib:
                out.append(Rate(day, "EUR", _code(child.attrib["currency"], "quote"),
                                _rate(child.attrib["rate"])))
    if not out:
        raise RatesUnavailable(_("The rates source is not the ECB's format."))
    return out


def _parse_json(text: str) -> list[Rate]:
    try:
        data = json.loads(text, parse_float=Decimal, parse_int=Decimal)
    except ValueError:
        raise RatesUnavailable(_("The rates source is not valid JSON."))
    blocks = data if isinstance(data, list) else [data]
    out = []
    for block in blocks:
        if not isinstance(block, dict) or not isinstance(block.get("rates"), dict):
            raise RatesUnavailable(_("The rates source is not valid JSON."))
        day, base = _day(block.get("date")), _code(block.get("base"), "base")
        for quote, value in block["rates"].items():
            out.append(Rate(day, base, _code(quote, "quote"), _rate(value)))
    return out


def _parse_csv(text: str) -> list[Rate]:
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or not {"date", "base", "quote", "rate"} <= {
            (f or "").strip().lower() for f in reader.fieldnames}:
        raise RatesUnavailable(_("The rates source is not a CSV with the columns date, base, "
                                 "quote, rate."))
    out = []
    for row in reader:
        row = {(k or "").strip().lower(): v for k, v in row.items()}
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue
        out.append(Rate(_day(row["date"]), _code(row["base"], "base"),
                        _code(row["quote"], "quote"), _rate(row["rate"])))
    return out


def read_source(source: str | None = None) -> tuple[str, bytes]:
    """The source's bytes: MINGA_FX_SOURCE (or `source`), a file path or an http(s) URL. Call
    it with no transaction open (a slow server must not hold one). Refuses a missing setting,
    an unreadable file, an HTTP error, more than 2 MB."""
    source = (source or current_app.config.get("MINGA_FX_SOURCE") or "").strip()
    if not source:
        raise RatesUnavailable(_("No rates source is configured (MINGA_FX_SOURCE)."))
    timeout = float(current_app.config.get("MINGA_FX_TIMEOUT_SECONDS", 10))
    try:
        if source.startswith(("http://", "https://")):
            request = urllib.request.Request(source, headers={"User-Agent": "Minga fx"})
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                body = response.read(MAX_SOURCE_BYTES + 1)
        else:
            if "://" in source:
                raise RatesUnavailable(_("The rates source must be a file or an http(s) URL."))
            with open(source, "rb") as handle:
                body = handle.read(MAX_SOURCE_BYTES + 1)
    except RatesUnavailable:
        raise
    except (OSError, ValueError) as exc:
        raise RatesUnavailable(_("The rates source could not be read: %(why)s",
                                 why=str(exc)[:200]))
    if len(body) > MAX_SOURCE_BYTES:
        raise RatesUnavailable(_("The rates source is larger than 2 MB."))
    return source, body


# ---------------------------------------------------------------- storing

@dataclass(frozen=True)
class FetchResult:
    added: int
    changed: int
    unchanged: int
    days: tuple[date, ...]


def store(rates: list[Rate], source: str = "") -> FetchResult:
    """Stores each day's rate of each pair once: a rate stored already is left alone, a
    corrected one (the source republished the day) replaces it. Running it again with the
    same rates changes nothing. Safe when two fetches store the same day at once (two
    workers, the job and `flask fx-fetch`): one INSERT ... ON CONFLICT DO UPDATE of only a
    different rate, on SQLite and PostgreSQL alike, so no unique violation escapes and the
    second is a no-op; the rows go in one order (day, base, quote) so that two fetches wait
    for each other rather than deadlock. Flushes; the caller commits."""
    if not rates:
        return FetchResult(0, 0, 0, ())
    days = sorted({r.day for r in rates})
    wanted: dict[tuple, Decimal] = {}
    for r in rates:
        wanted.setdefault((r.day, r.base, r.quote), r.rate)  # the first of a pair twice
    stored = {(d, b, q): rate for d, b, q, rate in db.session.execute(
        select(ExchangeRate.day, ExchangeRate.base, ExchangeRate.quote, ExchangeRate.rate)
        .where(ExchangeRate.day.in_(days)))}
    now, rows, unchanged = utcnow(), [], 0
    for key in sorted(wanted):
        if key in stored and Decimal(stored[key]) == wanted[key]:
            unchanged += 1
            continue
        rows.append({"day": key[0], "base": key[1], "quote": key[2],
                     "rate": format(wanted[key].normalize(), "f"), "source": source[:300],
                     "fetched_at": now})
    written = _upsert(rows)
    added = sum(1 for key in written if key not in stored)
    changed = len(written) - added
    unchanged += len(rows) - len(written)  # stored meanwhile by another fetch, as here
    if written:
        refcache.bump(CACHE)
    return FetchResult(added, changed, unchanged, tuple(days))


UPSERT_CHUNK = 500


def _upsert(rows: list[dict]) -> set[tuple]:
    """INSERT ... ON CONFLICT (day, base, quote) DO UPDATE the rate, source and time, only
    where the rate differs; the keys of the rows inserted or updated."""
    if not rows:
        return set()
    if db.session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    table = ExchangeRate.__table__
    written: set[tuple] = set()
    for start in range(0, len(rows), UPSERT_CHUNK):
        stmt = insert(table).values(rows[start:start + UPSERT_CHUNK])
        stmt = stmt.on_conflict_do_update(
            index_elements=["day", "base", "quote"],
            set_={"rate": stmt.excluded.rate, "source": stmt.excluded.source,
                  "fetched_at": stmt.excluded.fetched_at},
            where=table.c.rate != stmt.excluded.rate,
        ).returning(table.c.day, table.c.base, table.c.quote)
        written.update(tuple(row) for row in db.session.execute(stmt))
    return written


def fetch(source: str | None = None) -> FetchResult:
    """Reads the configured source and stores its rates (idempotent), committing them. The
    source is read before any transaction is opened."""
    db.session.commit()  # nothing open while the source answers
    name, body = read_source(source)
    result = store(parse(body), name)
    db.session.commit()
    return result


# ---------------------------------------------------------------- reading rates

def max_age_days() -> int:
    return int(current_app.config.get("MINGA_FX_MAX_AGE_DAYS", 3))


def today() -> date:
    return utcnow().date()


def _table(day: date) -> dict[tuple[str, str], tuple[Decimal, date]]:
    """{(base, quote): (rate, day)}: the newest rate of each pair from `day` back to the
    oldest one still fresh enough, from this process's cache (one query when it changed)."""
    oldest = day - timedelta(days=max_age_days())

    def load():
        found: dict = {}
        for d, base, quote, rate in db.session.execute(
                select(ExchangeRate.day, ExchangeRate.base, ExchangeRate.quote,
                       ExchangeRate.rate)
                .where(ExchangeRate.day <= day, ExchangeRate.day >= oldest)
                .order_by(ExchangeRate.day)):
            found[(base, quote)] = (Decimal(rate), d)
        return found
    return refcache.cached(CACHE, (day, oldest), load)


def _direct(table, base: str, quote: str):
    if (base, quote) in table:
        return table[(base, quote)]
    if (quote, base) in table:
        rate, d = table[(quote, base)]
        with localcontext() as ctx:
            ctx.prec = 28
            return Decimal(1) / rate, d
    return None


def rate_on(base: str, quote: str, day: date | None = None) -> tuple[Decimal, date] | None:
    """1 `base` = rate `quote`, and the day the rate is of: the pair as published, its
    inverse, or across a third currency both are published against (COP to USD through EUR;
    the older of the two days). None when no rate is at most MINGA_FX_MAX_AGE_DAYS older
    than `day` (today by default): no conversion rather than a stale one."""
    base, quote = (base or "").upper(), (quote or "").upper()
    if base == quote:
        return Decimal(1), day or today()
    table = _table(day or today())
    found = _direct(table, base, quote)
    if found is not None:
        return found
    pivots = sorted({c for pair in table for c in pair} - {base, quote})
    best = None
    for pivot in pivots:
        left, right = _direct(table, base, pivot), _direct(table, pivot, quote)
        if left is None or right is None:
            continue
        with localcontext() as ctx:
            ctx.prec = 28
            candidate = (left[0] * right[0], min(left[1], right[1]))
        if best is None or candidate[1] > best[1]:
            best = candidate
    return best


def indicative(amount_minor: int, currency: str, to_currency: str | None,
               day: date | None = None) -> Indicative | None:
    """`amount_minor` of `currency` in `to_currency` at the rate of `day` (rate_on), rounded
    half up to the minor unit; None without a fresh rate, or when the currencies are one."""
    if not to_currency or to_currency.upper() == (currency or "").upper():
        return None
    found = rate_on(currency, to_currency, day)
    if found is None:
        return None
    rate, on = found
    return Indicative(convert(amount_minor, currency, to_currency, rate), to_currency.upper(),
                      int(amount_minor), currency.upper(), rate, on)


def convert(amount_minor: int, currency: str, to_currency: str, rate: Decimal) -> int:
    """`amount_minor` of `currency` at 1 `currency` = `rate` `to_currency`, in minor units
    of `to_currency`, rounded half up (exact decimals throughout)."""
    from ..common.money import exponent
    with localcontext() as ctx:
        ctx.prec = 40
        major = Decimal(int(amount_minor)).scaleb(-exponent(currency)) * rate
        return int(major.scaleb(exponent(to_currency)).quantize(Decimal(1),
                                                                rounding=ROUND_HALF_UP))


def latest(limit: int = 200) -> list[ExchangeRate]:
    """The rates of the newest day stored (the API's list), by pair."""
    newest = db.session.scalar(select(ExchangeRate.day).order_by(ExchangeRate.day.desc())
                               .limit(1))
    if newest is None:
        return []
    return list(db.session.scalars(select(ExchangeRate).where(ExchangeRate.day == newest)
                                   .order_by(ExchangeRate.base, ExchangeRate.quote)
                                   .limit(limit)))


def check_display_currency(code) -> str | None:
    """EUR or USD, or None for the coop's own currency; refuses anything else."""
    if code is None or code == "":
        return None
    if not isinstance(code, str) or code.upper() not in DISPLAY_CURRENCIES:
        raise ValidationFailed(_("Choose EUR, USD or the cooperative's currency."),
                               code="invalid_currency",
                               fields={"display_currency": [_("Unknown currency.")]})
    return code.upper()


def viewer_currency() -> str | None:
    """The logged-in buyer's display currency (None for anyone else, or the coop's own)."""
    from flask_login import current_user
    if not getattr(current_user, "is_authenticated", False):
        return None
    return getattr(current_user, "display_currency", None) or None


def for_viewer(amount_minor: int, currency: str) -> Indicative | None:
    """`indicative` in the viewer's display currency, at today's rate (templates'
    `indicative(...)`): nothing is read when the viewer chose no other currency."""
    wanted = viewer_currency()
    if not wanted or wanted == currency:
        return None
    return indicative(amount_minor, currency, wanted)


def rates_for_viewer(currencies) -> list[Indicative]:
    """For the supply page: 1 unit of each of `currencies` in the viewer's display currency,
    at today's rate (those with a fresh rate only), by currency."""
    from ..common.money import exponent
    wanted = viewer_currency()
    if not wanted:
        return []
    out = []
    for code in sorted({c for c in currencies if c and c != wanted}):
        found = indicative(10 ** exponent(code), code, wanted)
        if found is not None:
            out.append(found)
    return out
