"""Messages: `notify` writes what a person is to be told (in the caller's transaction, with the
job that sends it); the job renders nothing more and hands the text to the channel; delivery
reports move it to delivered or failed.

    messages.notify(farmer, "farmer.paid", event=f"payout-line:{line.id}", coop_id=coop.id,
                    amount=Money(line.amount_minor, "COP"), rail="Nequi", reference="8812",
                    link=url_for("payouts.mine"))

Who the person is (address, language, channel, time zone) comes from the auth domain
through the hook create_app wires (`people_from`): this domain imports no other."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from datetime import date, datetime, time, timedelta
from typing import Callable
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import force_locale
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import func, select, update

from ..common.inserts import insert_ignore, insert_many
from ..common.models import utcnow
from ..common.statuses import MessageStatus
from ..extensions import db
from ..jobs import services as jobs
from .models import Message, OptOut
from .templates import TEMPLATES, UNSUBSCRIBABLE, Template

log = logging.getLogger("minga.messages")
CHANNELS = ("email", "sms", "whatsapp")
SEND_BATCH = 50


@dataclass(frozen=True)
class Money:
    minor: int
    currency: str


@dataclass(frozen=True)
class Kg:
    grams: int


@dataclass(frozen=True)
class Label:
    """An internal code (a crop, a grade, a rail) shown as its label in the recipient's
    language (coop/common/labels.py)."""
    kind: str
    code: str


@dataclass(frozen=True)
class Recipient:
    """What messages need to know of a person (the auth domain answers it)."""
    id: int
    name: str
    email: str | None
    phone: str | None          # E.164
    language: str              # "es", "en"
    region: str | None         # the coop's country: es_CO or es_PE numbers
    channel: str               # preferred: email, sms, whatsapp
    timezone: str
    announcements: bool        # opted in to news


_PEOPLE: dict[str, Callable] = {}


def people_from(app, recipient: Callable[[int], Recipient | None],
                set_announcements: Callable[[int, bool], None],
                names: Callable[[set[int]], dict[int, str]],
                recipients: Callable[[set[int]], dict[int, Recipient]] | None = None) -> None:
    """Wired by create_app: `recipient(user_id)`, `set_announcements(user_id, on)`,
    `names(user_ids)` and `recipients(user_ids)` (many people in one query; without it, one
    `recipient` call each)."""
    app.extensions["minga.people"] = {"recipient": recipient, "names": names,
                                      "set_announcements": set_announcements,
                                      "recipients": recipients}


def _people() -> dict:
    return current_app.extensions["minga.people"]


def recipient(user_or_id) -> Recipient | None:
    user_id = user_or_id if isinstance(user_or_id, int) else user_or_id.id
    return _people()["recipient"](user_id)


def recipients(user_ids) -> dict[int, Recipient]:
    """user id -> Recipient for many people (one query when the auth domain answers in bulk);
    ids of no one are left out."""
    people = _people()
    if people.get("recipients") is not None:
        return people["recipients"](set(user_ids))
    found = {user_id: people["recipient"](user_id) for user_id in set(user_ids)}
    return {user_id: person for user_id, person in found.items() if person is not None}


# --- writing messages -----------------------------------------------------------------------

def _channel(person: Recipient, forced: str | None) -> tuple[str, str] | None:
    """(channel, address) for the person: the forced or preferred channel when they have its
    address, else the other they have; None when they have neither."""
    wanted = forced or person.channel
    if wanted in ("sms", "whatsapp") and person.phone:
        return wanted, person.phone
    if wanted == "email" and person.email:
        return "email", person.email
    if forced:
        return None  # a code for a phone must not go to an e-mail, nor the other way
    if person.phone:
        return "sms", person.phone
    if person.email:
        return "email", person.email
    return None


def _locale(person: Recipient) -> str:
    return _regional(person.language or "es", person.region)


@lru_cache(maxsize=256)
def _regional(language: str, region: str | None) -> str:
    from ..common.numbers import regional_locale
    chosen = regional_locale(language, region)
    return "es_CO" if chosen == "es" else chosen


def _format(value, locale: str, tz: ZoneInfo):
    from flask_babel import format_date, format_datetime
    from ..common.money import format_money
    from ..common.numbers import format_number
    from ..common.quantities import grams_to_decimal
    if isinstance(value, Money):
        return format_money(value.minor, value.currency, locale=locale)
    if isinstance(value, Label):
        from ..common.labels import label
        return str(label(value.code, value.kind))
    if isinstance(value, Kg):
        return format_number(grams_to_decimal(value.grams), locale=locale)
    if isinstance(value, datetime):
        return format_datetime(value.astimezone(tz), "d MMM, HH:mm", rebase=False)
    if isinstance(value, date):
        return format_date(value, "d MMM")
    if isinstance(value, int) and not isinstance(value, bool):
        return format_number(value, "#,##0", locale=locale)
    return str(value)


def render(template: Template, person: Recipient, context: dict) -> dict:
    """The texts in the person's language, figures in their locale and time zone."""
    locale = _locale(person)
    tz = ZoneInfo(person.timezone or "America/Bogota")
    with force_locale(locale):
        values = {name: _format(value, locale, tz) for name, value in context.items()}
        values.setdefault("link", context.get("link") or "")
        short = str(template.short) % values
        subject = str(template.subject) % values
        more = str(template.more) % values if template.more else ""
    return {"short": short, "subject": subject, "more": more, "locale": locale}


def _absolute(link: str | None) -> str | None:
    if not link:
        return None
    if link.startswith(("http://", "https://")):
        return link
    base = (current_app.config.get("PUBLIC_BASE_URL") or "http://127.0.0.1:5000").rstrip("/")
    return base + link


def _daytime(person: Recipient, now: datetime) -> datetime:
    """`now`, or the next start of the day in the person's time zone when it is night there."""
    start, end = current_app.config.get("MESSAGES_DAYTIME", (8, 20))
    if (start, end) == (0, 24):
        return now
    tz = ZoneInfo(person.timezone or "America/Bogota")
    local = now.astimezone(tz)
    if start <= local.hour < end:
        return now
    day = local.date() if local.hour < start else local.date() + timedelta(days=1)
    return datetime.combine(day, time(start), tzinfo=tz).astimezone(now.tzinfo)


def opted_out(user_id: int, topic: str) -> bool:
    return db.session.scalar(select(func.count()).select_from(OptOut).where(
        OptOut.user_id == user_id, OptOut.topic == topic)) > 0


def notify(user_or_id, template_name: str, *, event: str, coop_id: int | None = None,
           channel: str | None = None, urgent: bool | None = None, now: datetime | None = None,
           send: bool = True, **context) -> list[Message]:
    """Write what `user` is to be told about `event` (see the module's docstring), in the
    current transaction, and the job that sends it (unless `send` is False: the caller
    enqueues many at once with `send_batches`). Returns the message (none when the person
    has no address for it, opted out, or was already told of this event on this channel)."""
    template = TEMPLATES[template_name]
    person = recipient(user_or_id)
    if person is None:
        return []
    if template.topic == "news" and not person.announcements:
        return []
    if template.topic in UNSUBSCRIBABLE and opted_out(person.id, template.topic):
        return []
    chosen = _channel(person, channel)
    if chosen is None:
        return []
    channel_name, address = chosen
    existing = db.session.scalar(select(Message).where(
        Message.event == event, Message.user_id == person.id, Message.channel == channel_name))
    if existing is not None:
        return [existing]
    link = _absolute(context.pop("link", None))
    texts = render(template, person, {**context, "link": link or ""})
    now = now or utcnow()
    urgent = template.urgent if urgent is None else urgent
    body = _body(texts, channel_name, link)
    count, encoding = (None, None)
    if channel_name != "email":
        from .channels import segments
        count, encoding = segments(body)
    row = dict(user_id=person.id, coop_id=coop_id, channel=channel_name,
               template=template_name, event=event[:120], locale=texts["locale"],
               to_address=address, subject=texts["subject"][:200], body=body, link=link,
               unsubscribe=template.topic in UNSUBSCRIBABLE, urgent=urgent,
               status=MessageStatus.QUEUED.value, attempts=0, segments=count,
               encoding=encoding, created_at=now,
               send_after=now if urgent else _daytime(person, now))
    # Two transactions telling of the same event at once: the unique key keeps one.
    message_id = insert_ignore(Message.__table__, row, ["event", "user_id", "channel"])
    if message_id is None:
        return [db.session.scalar(select(Message).where(
            Message.event == event, Message.user_id == person.id,
            Message.channel == channel_name))]
    message = db.session.get(Message, message_id)
    if send:
        jobs.enqueue("messages.send", run_at=message.send_after, coop_id=coop_id,
                     ids=[message.id])
    return [message]


def told(event: str) -> bool:
    """Whether anyone has been told of `event` already (one indexed look-up: the unique key
    on event, person and channel starts with the event)."""
    return db.session.scalar(select(Message.id).where(Message.event == event[:120])
                             .limit(1)) is not None


@dataclass(frozen=True)
class Notice:
    """One person to be told of one event (`notify_many`): the template's context as for
    `notify` (Money, Label, Kg, dates; `link` a path or URL)."""
    user_id: int
    template: str
    event: str
    context: dict


class _Renderer:
    """`render` for many messages of one locale (entered once with `force_locale`): each
    template's texts are translated once, each value that repeats (a rail's label, a link,
    a coop's name) formatted once; each message is then only the %-substitution of its
    values. The texts are those `render` writes, character for character."""

    def __init__(self, locale: str):
        self.locale = locale
        self._texts: dict[str, tuple[str, str, str]] = {}
        self._values: dict[tuple, str] = {}
        self._zones: dict[str, ZoneInfo] = {}

    def zone(self, name: str | None) -> ZoneInfo:
        name = name or "America/Bogota"
        if name not in self._zones:
            self._zones[name] = ZoneInfo(name)
        return self._zones[name]

    def value(self, value, tz_name: str | None) -> str:
        if type(value) is str:
            return value
        if isinstance(value, (Label, Money)):
            key = (value, None)
            if key not in self._values:
                self._values[key] = _format(value, self.locale, self.zone(tz_name))
            return self._values[key]
        return _format(value, self.locale, self.zone(tz_name))

    def __call__(self, name: str, person: Recipient, context: dict, link: str | None) -> dict:
        if name not in self._texts:
            template = TEMPLATES[name]
            self._texts[name] = (str(template.short), str(template.subject),
                                 str(template.more) if template.more else "")
        short, subject, more = self._texts[name]
        values = {key: self.value(value, person.timezone) for key, value in context.items()
                  if key != "link"}
        values["link"] = link or ""
        return {"short": short % values, "subject": subject % values,
                "more": more % values if more else "", "locale": self.locale}


def notify_many(notices: list[Notice], *, coop_id: int | None = None,
                channel: str | None = None, now: datetime | None = None,
                send: bool = True) -> list[int]:
    """`notify` for many people at once, in the current transaction (a bank's file paying
    10,000 farmers): the people in one query (the auth domain's bulk lookup), the opt-outs
    in one, the texts rendered a locale at a time, the messages written in multi-row
    INSERTs that skip what was already told (ON CONFLICT DO NOTHING on the event, person and
    channel: a file imported again, or two imports at once, tell nobody twice), and their
    sending enqueued SEND_BATCH a job. The texts are `notify`'s, in each person's language.
    Returns the ids of the messages written now (none for those told already, without an
    address for the channel, or opted out)."""
    if not notices:
        return []
    now = now or utcnow()
    people = recipients({n.user_id for n in notices})
    wanted = sorted({TEMPLATES[n.template].topic for n in notices} & set(UNSUBSCRIBABLE))
    off: set[tuple[int, str]] = set()
    if wanted and people:
        from ..common.bulk import id_sets
        for where in id_sets(OptOut.user_id, list(people)):
            off.update(tuple(row) for row in db.session.execute(
                select(OptOut.user_id, OptOut.topic).where(where, OptOut.topic.in_(wanted))))
    # Who is told, on which channel, grouped by the locale their texts are written in.
    by_locale: dict[str, list] = {}
    for index, notice in enumerate(notices):
        template = TEMPLATES[notice.template]
        person = people.get(notice.user_id)
        if person is None:
            continue
        if template.topic == "news" and not person.announcements:
            continue
        if template.topic in UNSUBSCRIBABLE and (person.id, template.topic) in off:
            continue
        chosen = _channel(person, channel)
        if chosen is None:
            continue
        by_locale.setdefault(_locale(person), []).append((index, notice, template, person,
                                                          chosen))
    from .channels import segments
    links: dict[str | None, str | None] = {}
    daytime: dict[str | None, datetime] = {}
    rows: dict[int, dict] = {}
    for locale, group in by_locale.items():
        render_one = _Renderer(locale)
        with force_locale(locale):
            for index, notice, template, person, (channel_name, address) in group:
                raw_link = notice.context.get("link")
                if raw_link not in links:
                    links[raw_link] = _absolute(raw_link)
                link = links[raw_link]
                texts = render_one(notice.template, person, notice.context, link)
                if template.urgent:
                    send_after = now
                else:
                    if person.timezone not in daytime:
                        daytime[person.timezone] = _daytime(person, now)
                    send_after = daytime[person.timezone]
                body = _body(texts, channel_name, link)
                count, encoding = segments(body) if channel_name != "email" else (None, None)
                rows[index] = dict(
                    user_id=person.id, coop_id=coop_id, channel=channel_name,
                    template=notice.template, event=notice.event[:120], locale=locale,
                    to_address=address, subject=texts["subject"][:200], body=body, link=link,
                    unsubscribe=template.topic in UNSUBSCRIBABLE, urgent=template.urgent,
                    status=MessageStatus.QUEUED.value, attempts=0, segments=count,
                    encoding=encoding, created_at=now, send_after=send_after)
    if not rows:
        return []
    written = insert_many(Message.__table__, [rows[i] for i in sorted(rows)],
                          ignore=["event", "user_id", "channel"], returning=("id", "send_after"))
    if send:
        _enqueue_sends(written, coop_id=coop_id)
    return [message_id for message_id, _at in written]


def _enqueue_sends(messages: list[tuple[int, datetime]], *, coop_id: int | None) -> list[int]:
    """Jobs sending these (id, send_after) messages, SEND_BATCH a job: those due now (or
    within a minute) together, those waiting for daytime by their time."""
    soon = utcnow() + timedelta(seconds=60)
    by_time: dict[datetime | None, list[int]] = {}
    for message_id, send_after in messages:
        if send_after is not None and send_after.tzinfo is None:  # SQLite hands back naive UTC
            from datetime import timezone
            send_after = send_after.replace(tzinfo=timezone.utc)
        at = send_after if send_after is not None and send_after > soon else None
        by_time.setdefault(at, []).append(message_id)
    ids: list[int] = []
    for at, message_ids in by_time.items():
        chunks = [message_ids[i:i + SEND_BATCH] for i in range(0, len(message_ids), SEND_BATCH)]
        ids += jobs.enqueue_many("messages.send", [{"ids": chunk} for chunk in chunks],
                                 coop_id=coop_id, run_at=at)
    return ids


def _body(texts: dict, channel: str, link: str | None) -> str:
    """SMS and WhatsApp: the short text (and the link when it has none). E-mail: the short
    text, then the rest, then the link."""
    short = texts["short"]
    if channel != "email":
        from .channels import normalise_for_sms
        text = short if not link or link in short else f"{short} {link}"
        # Babel's no-break spaces (before a currency code) are not GSM-7: plain spaces.
        text = text.replace("\xa0", " ").replace("\u202f", " ")
        return normalise_for_sms(text) if channel == "sms" else text
    parts = [short] + ([texts["more"]] if texts["more"] else [])
    if link and link not in short:
        parts.append(link)
    return "\n\n".join(parts)


def send_batches(messages: list[Message], *, coop_id: int | None = None) -> list[int]:
    """Enqueue the sending of many messages, SEND_BATCH a job (a batch's 10,000 payments)."""
    return _enqueue_sends([(message.id, message.send_after) for message in messages],
                          coop_id=coop_id)


# --- sending --------------------------------------------------------------------------------

class SendFailed(Exception):
    """Some messages of a job met a temporary failure: the job is tried again later."""


def unsubscribe_token(user_id: int, topic: str) -> str:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="minga.unsubscribe") \
        .dumps([user_id, topic])


def read_unsubscribe_token(token: str) -> tuple[int, str] | None:
    try:
        user_id, topic = URLSafeSerializer(current_app.config["SECRET_KEY"],
                                           salt="minga.unsubscribe").loads(token)
    except (BadSignature, ValueError, TypeError):
        return None
    if not isinstance(user_id, int) or topic not in UNSUBSCRIBABLE:
        return None
    return user_id, topic


def _email_parts(message: Message) -> tuple[str, str, dict]:
    from markupsafe import escape
    headers: dict = {}
    text = message.body
    html_parts = [f"<p>{escape(part)}</p>" for part in message.body.split("\n\n")
                  if part != message.link]
    if message.link:
        html_parts.append(f'<p><a href="{escape(message.link)}">{escape(message.link)}</a></p>')
    if message.unsubscribe:
        topic = TEMPLATES[message.template].topic
        url = _absolute(f"/messages/unsubscribe/{unsubscribe_token(message.user_id, topic)}")
        headers["List-Unsubscribe"] = f"<{url}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        with force_locale(message.locale):
            from flask_babel import gettext as _
            stop = _("Stop these e-mails")
        text += f"\n\n--\n{stop}: {url}"
        html_parts.append(f'<p style="font-size:small"><a href="{escape(url)}">'
                          f"{escape(stop)}</a></p>")
    html = ('<!doctype html><html lang="' + escape(message.locale[:2]) + '"><body>'
            + "".join(html_parts) + "</body></html>")
    return text, html, headers


def _deliver(message: Message):
    from . import channels
    if message.channel == "email":
        text, html, headers = _email_parts(message)
        return channels.send_email(to=message.to_address, subject=message.subject or "",
                                   text=text, html=html, headers=headers)
    callback = _absolute(f"/messages/status/{current_app.config.get('SMS_PROVIDER', 'twilio')}")
    if message.channel == "whatsapp":
        return channels.send_whatsapp(to=message.to_address, body=message.body,
                                      status_callback=callback)
    return channels.send_sms(to=message.to_address, body=message.body, status_callback=callback)


@jobs.task("messages.send")
def send(ids: list[int]) -> None:
    """Send each queued message of `ids` (a rerun skips those already sent). A temporary
    failure of any leaves it queued and fails the job, to be tried again with backoff; a
    permanent one (a refused address) fails the message."""
    from .channels import ChannelError
    temporary = []
    # One query for the job's messages, as plain rows: ORM objects would be expired by each
    # message's own commit below and reloaded one by one (a query per message).
    loaded = {row.id: row for row in db.session.execute(
        select(*Message.__table__.c).where(Message.id.in_(ids)))}
    for message_id in ids:
        message = loaded.get(message_id)
        if message is None or message.status != MessageStatus.QUEUED:
            continue
        attempts = message.attempts + 1
        try:
            sent = _deliver(message)
        except ChannelError as exc:
            values = {"attempts": attempts, "error": f"{exc.code}: {exc}"[:1000]}
            if exc.permanent:
                values["status"] = MessageStatus.FAILED
            else:
                temporary.append(message_id)
            _record(message_id, **values)
            continue
        _record(message_id, status=MessageStatus.SENT, attempts=attempts, error=None,
                provider=sent.provider, provider_id=sent.provider_id, sent_at=utcnow())
    if temporary:
        raise SendFailed(f"{len(temporary)} of {len(ids)} messages not sent yet")


def _record(message_id: int, **values) -> None:
    db.session.execute(update(Message).where(Message.id == message_id,
                                             Message.status == MessageStatus.QUEUED)
                       .values(**values).execution_options(synchronize_session=False))
    db.session.commit()


def give_up(job) -> None:
    """A parked send job: its still-queued messages are failed (staff may retry the job)."""
    import json
    if job.task != "messages.send":
        return
    ids = json.loads(job.payload or "{}").get("ids", [])
    db.session.execute(update(Message).where(Message.id.in_(ids),
                                             Message.status == MessageStatus.QUEUED)
                       .values(status=MessageStatus.FAILED,
                               error=(job.last_error or "gave up")[:1000])
                       .execution_options(synchronize_session=False))


# Provider statuses -> ours (Twilio's names; other adapters map to these).
_REPORTED = {"accepted": MessageStatus.SENT, "queued": MessageStatus.SENT,
             "sending": MessageStatus.SENT, "sent": MessageStatus.SENT,
             "delivered": MessageStatus.DELIVERED, "read": MessageStatus.DELIVERED,
             "failed": MessageStatus.FAILED, "undelivered": MessageStatus.FAILED}


def record_delivery(provider: str, provider_id: str, status: str,
                    error: str | None = None) -> bool:
    """A provider's delivery report. Returns whether a message had that id. Reports may come
    twice or out of order: delivered and failed are final, sent never undoes them."""
    ours = _REPORTED.get((status or "").lower())
    message = db.session.scalar(select(Message).where(Message.provider == provider,
                                                      Message.provider_id == provider_id))
    if message is None or ours is None:
        return message is not None
    if message.status == ours or message.status in (MessageStatus.DELIVERED,
                                                    MessageStatus.FAILED):
        return True
    if ours == MessageStatus.SENT and message.status != MessageStatus.QUEUED:
        return True
    message.status = ours
    if ours == MessageStatus.DELIVERED:
        message.delivered_at = utcnow()
    if ours == MessageStatus.FAILED:
        message.error = (error or status)[:1000]
    return True


# --- reading and preferences ----------------------------------------------------------------

def of_coop(coop_id: int, *, before_id: int | None = None, limit: int = 50) -> list[Message]:
    stmt = select(Message).where(Message.coop_id == coop_id)
    if before_id:
        stmt = stmt.where(Message.id < before_id)
    return list(db.session.scalars(stmt.order_by(Message.id.desc()).limit(limit)))


def of_person(user_id: int, *, before_id: int | None = None, limit: int = 50) -> list[Message]:
    stmt = select(Message).where(Message.user_id == user_id)
    if before_id:
        stmt = stmt.where(Message.id < before_id)
    return list(db.session.scalars(stmt.order_by(Message.id.desc()).limit(limit)))


def unsubscribe(user_id: int, topic: str) -> None:
    """Stop `topic` for the person (news: their opt-in is withdrawn too)."""
    if topic == "news":
        _people()["set_announcements"](user_id, False)
    if not opted_out(user_id, topic):
        db.session.add(OptOut(user_id=user_id, topic=topic))
        db.session.flush()


def resubscribe(user_id: int, topic: str) -> None:
    db.session.execute(OptOut.__table__.delete().where(OptOut.user_id == user_id,
                                                       OptOut.topic == topic))


def topics_off(user_id: int) -> set[str]:
    return set(db.session.scalars(select(OptOut.topic).where(OptOut.user_id == user_id)))


def tell_parked(job, staff_ids: Callable[[int, str], list[int]]) -> None:
    """A job was parked: its queued messages are failed (for a send job), and the treasurers
    of its coop are told (not for a send job: those show on the messages page, and a message
    about a message that cannot be sent would fail the same way)."""
    give_up(job)
    if job.task == "messages.send" or job.coop_id is None:
        return
    for user_id in staff_ids(job.coop_id, "treasurer"):
        notify(user_id, "treasurer.job_parked", event=f"job-parked:{job.id}:{job.attempts}",
               coop_id=job.coop_id, task=job.task, attempts=job.attempts,
               link=f"/manage/coops/{job.coop_id}/jobs")


def names_of(user_ids: set[int]) -> dict[int, str]:
    """The names of the people a page of messages went to (one query)."""
    return _people()["names"](user_ids) if user_ids else {}
