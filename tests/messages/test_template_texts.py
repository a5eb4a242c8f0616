"""Every message template reads in Spanish (a farmer who chose Spanish reads no English) and
its SMS, with long figures and names, fits two GSM-7 segments in either language."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from coop.messages import services as messages
from coop.messages.channels import segments
from coop.messages.templates import TEMPLATES

LONG = dict(
    kg=messages.Kg(1_250_500), crop=messages.Label("crop", "coffee"),
    coop="Cooperativa Nuevo Horizonte del Cauca", point="Vereda El Tambo, Vereda La Palma",
    by=date(2026, 12, 9), price=messages.Money(2_800_000, "COP"), pool="#12345",
    grade=messages.Label("grade", "sca85"), amount=messages.Money(124_000_000_00, "COP"),
    advance=messages.Money(24_800_000_00, "COP"), rail=messages.Label("rail", "bank"),
    reference="MINGA-12345-678901", balance=messages.Money(1_000_000_00, "COP"),
    closes=datetime(2026, 12, 9, 17, 0, tzinfo=timezone.utc),
    reason=messages.Label("refund_reason", "shortfall_downgrade"), min=messages.Kg(2_000_000),
    days=12, batch="#12345", failed=1234, count=12, attempts=8, task="pools.settle",
    code="123456", what="número de teléfono", link="https://minga.coop/my/statements/123456",
    # a lot's journey (coop/lots/dispatch.py): the problem's note as sent, cut at 80
    lot="CO-12345-2026-0042", date=date(2026, 12, 9), carrier="Transportes del Cauca S.A.S.",
    document="REM-2026-000123456", buyer="Tostadores Europeos de Cafe GmbH", order="#1234567",
    note="Dos sacos llegaron mojados y uno roto; faltan unos 60 kg del lote segun la bascula…")


def _person(language: str) -> messages.Recipient:
    return messages.Recipient(id=1, name="Rosa", email=None, phone="+573001112233",
                              language=language, region="CO", channel="sms",
                              timezone="America/Bogota", announcements=True)


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_each_template_is_spanish_for_a_spanish_reader(app, name):
    with app.test_request_context():
        spanish = messages.render(TEMPLATES[name], _person("es"), LONG)
        english = messages.render(TEMPLATES[name], _person("en"), LONG)
    for part in ("short", "subject", "more"):
        if english[part]:
            assert spanish[part] != english[part], (name, part, english[part])


@pytest.mark.parametrize("language", ["es", "en"])
@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_each_sms_fits_two_gsm7_segments(app, name, language):
    with app.test_request_context():
        texts = messages.render(TEMPLATES[name], _person(language), LONG)
        body = messages._body(texts, "sms", LONG["link"])
    count, encoding = segments(body)
    assert encoding == "GSM-7" and count <= 2, (len(body), body)
