"""What an SMS costs: GSM-7 (160 septets, 153 a part; the extension table counts two) or
UCS-2 (70 UTF-16 units, 67 a part) as soon as one character is outside GSM-7, such as
Spanish á í ó ú; and the folding that keeps a Spanish text in GSM-7."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from coop.messages.channels import GSM7, GSM7_EXTENSION, normalise_for_sms, segments

BASIC = sorted(GSM7)
EXTENSION = sorted(GSM7_EXTENSION)


@pytest.mark.parametrize("body, expected", [
    ("", (1, "GSM-7")),
    ("Minga: le pagamos 1.240.000 COP por Nequi. Ref 8812", (1, "GSM-7")),
    ("a" * 160, (1, "GSM-7")),
    ("a" * 161, (2, "GSM-7")),
    ("a" * 306, (2, "GSM-7")),
    ("a" * 307, (3, "GSM-7")),
    ("Año café pingüino àèìòù ¿qué? ¡bien!", (1, "GSM-7")),
    ("€" * 80, (1, "GSM-7")),              # 160 septets: two each
    ("€" * 80 + "a", (2, "GSM-7")),
    ("[" + "a" * 158, (1, "GSM-7")),
    ("[" + "a" * 159, (2, "GSM-7")),
    ("á", (1, "UCS-2")),                   # á is not GSM-7
    ("Está lista la cosecha", (1, "UCS-2")),
    ("á" + "a" * 69, (1, "UCS-2")),
    ("á" + "a" * 70, (2, "UCS-2")),
    ("á" * 134, (2, "UCS-2")),
    ("á" * 135, (3, "UCS-2")),
    ("🌱" * 35, (1, "UCS-2")),             # two UTF-16 units each
    ("🌱" * 35 + "a", (2, "UCS-2")),
])
def test_segments(body, expected):
    assert segments(body) == expected


def test_the_spanish_vowels_outside_gsm7_and_those_inside():
    for ch in "áíóúÁÍÓÚ":
        assert segments(ch)[1] == "UCS-2", ch
    for ch in "éñüàèìòùÉÑÜ¿¡":
        assert segments(ch)[1] == "GSM-7", ch


def test_an_extension_character_is_never_cut_between_two_parts():
    # 152 septets, then "€" (2): it cannot end the first part of 153, so it starts the second.
    assert segments("a" * 152 + "€" + "a" * 150) == (2, "GSM-7")  # 152 | 2+150
    assert segments("a" * 152 + "€" + "a" * 152) == (3, "GSM-7")  # 152 | 154 > 153
    assert segments("a" * 151 + "€" + "a" * 153) == (2, "GSM-7")  # 153 | 153


def test_a_surrogate_pair_is_never_cut_between_two_parts():
    assert segments("á" * 66 + "🌱" + "á" * 66) == (3, "UCS-2")  # 66 | 2+65 | 1
    assert segments("á" * 65 + "🌱" + "á" * 67) == (2, "UCS-2")  # 67 | 67


@given(st.text(alphabet=st.sampled_from(BASIC), max_size=800))
def test_plain_gsm7_is_160_alone_then_153_a_part(body):
    count, encoding = segments(body)
    assert encoding == "GSM-7"
    assert count == (1 if len(body) <= 160 else -(-len(body) // 153))


@given(st.text(alphabet=st.sampled_from(BASIC + EXTENSION), max_size=800))
def test_extension_characters_count_two_septets(body):
    septets = len(body) + sum(ch in GSM7_EXTENSION for ch in body)
    count, encoding = segments(body)
    assert encoding == "GSM-7"
    if septets <= 160:
        assert count == 1
    else:  # never fewer parts than the septets need, at most one more for uncut escapes
        assert -(-septets // 153) <= count <= -(-septets // 152)


@given(st.text(min_size=1, max_size=300).filter(lambda t: any(
    ch not in GSM7 and ch not in GSM7_EXTENSION for ch in t)))
def test_one_character_outside_gsm7_makes_it_ucs2(body):
    units = len(body.encode("utf-16-le")) // 2
    count, encoding = segments(body)
    assert encoding == "UCS-2"
    if units <= 70:
        assert count == 1
    else:
        assert -(-units // 67) <= count <= -(-units // 66)


@settings(max_examples=200)
@given(st.text(alphabet=st.sampled_from(
    list("abcdefghijklmnñopqrstuvwxyzABCDEFGHIJKLMNÑOPQRSTUVWXYZ0123456789")
    + list("áéíóúüÁÉÍÓÚÜ¿¡.,;:!?()-'\" \n") + list("“”‘’–—…\u00a0º")), max_size=400))
def test_a_spanish_text_folded_for_sms_stays_gsm7_and_keeps_its_length_near(text):
    folded = normalise_for_sms(text)
    assert segments(folded)[1] == "GSM-7"
    assert normalise_for_sms(folded) == folded
    assert len(text) <= len(folded) <= len(text) + 2 * text.count("…")


@given(st.text(alphabet=st.sampled_from(BASIC + EXTENSION), max_size=200))
def test_folding_leaves_gsm7_alone(text):
    assert normalise_for_sms(text) == text


def test_folding_drops_only_the_accents_gsm7_lacks():
    assert normalise_for_sms("Recibió su pago: ¿está bien? Sí, señor. Pingüino, café, ÁÍÓÚ") \
        == "Recibio su pago: ¿esta bien? Si, señor. Pingüino, café, AIOU"
    assert normalise_for_sms("“Listo” — 3 kg… ç") == '"Listo" - 3 kg... c'
    assert normalise_for_sms("Gracias 🌱") == "Gracias 🌱"  # no plain form: kept
