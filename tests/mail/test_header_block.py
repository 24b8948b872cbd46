"""Our own header fields out of a message before learning, and a message's identity."""

from pathlib import Path

import pytest

from conftest import SAMPLE
from spamclf.commands.filter import add_headers, verdict_fields
from spamclf.mail.header_block import message_key, strip_own_headers

FIELDS = verdict_fields("spam", 0.97, (0.5, 0.5), "0123456789ab", ("X-Spam-Flag", "X-Spam-Score", "X-Spam-Status"))


def filtered(raw: bytes) -> bytes:
    return add_headers(raw, FIELDS)


def test_strip_removes_ours_and_the_forged_renames_with_their_continuation_lines():
    raw = (
        b"From: a@example.com\nX-Spam-Flag: NO\nX-Spam-Status: No,\n\tscore=0.1\nSubject: hi\n"
        b"X-Forged-Spam-Score: 0.0\nX-Spamassassin-Like: kept\n\nX-Spam-Flag: in the body stays\n"
    )
    assert strip_own_headers(raw) == b"From: a@example.com\nSubject: hi\nX-Spamassassin-Like: kept\n\nX-Spam-Flag: in the body stays\n"


def test_strip_keeps_crlf_and_a_message_without_ours_byte_for_byte():
    raw = b"From: a\r\nX-Spam-Flag: YES\r\nSubject: b\r\n\r\nbody\r\n"
    assert strip_own_headers(raw) == b"From: a\r\nSubject: b\r\n\r\nbody\r\n"
    plain = b"From: a\r\nSubject: b\r\n\r\nbody\r\n"
    assert strip_own_headers(plain) == plain


def test_a_custom_prefix_strips_its_own_fields():
    raw = b"X-Mine-Flag: YES\nX-Forged-Mine-Flag: NO\nX-Spam-Flag: kept\n\nbody"
    assert strip_own_headers(raw, "X-Mine") == b"X-Spam-Flag: kept\n\nbody"


@pytest.mark.parametrize("path", sorted(p for p in Path(SAMPLE).rglob("*") if p.is_file())[:120], ids=lambda p: p.name[:24])
def test_a_filtered_message_is_the_same_message(path):
    raw = path.read_bytes()
    assert message_key(filtered(raw)) == message_key(raw)
    assert message_key(filtered(filtered(raw))) == message_key(raw)
    if b"\n\n" in raw or b"\r\n\r\n" in raw:
        assert strip_own_headers(filtered(raw)) == strip_own_headers(raw)


def test_identity_is_message_id_plus_body():
    a = b"Message-ID: <1@x>\nSubject: one\n\nsame body\n"
    assert message_key(a) == message_key(b"Subject: other\nMessage-Id:  <1@x>\n\nsame body\n")  # headers besides the id do not count
    assert message_key(a) == message_key(a.replace(b"\n", b"\r\n"))  # nor line endings
    assert message_key(a) != message_key(b"Message-ID: <2@x>\nSubject: one\n\nsame body\n")
    assert message_key(a) != message_key(b"Message-ID: <1@x>\nSubject: one\n\nanother body\n")


def test_without_message_id_the_whole_message_counts():
    a = b"Subject: one\n\nbody\n"
    assert message_key(a) != message_key(b"Subject: two\n\nbody\n")
    assert message_key(a) == message_key(b"Subject: one\nX-Spam-Flag: YES\n\nbody\n")
    assert message_key(b"X-Message-ID: <1@x>\n\nbody") != message_key(b"X-Message-ID: <2@x>\n\nbody")
    assert len(message_key(b"")) == 32


def test_an_mbox_envelope_line_is_not_part_of_the_identity():
    raw = b"Message-ID: <1@x>\nSubject: one\n\nbody\n"
    assert message_key(b"From someone@example.com Sat Jan  1 00:00:00 2000\n" + raw) == message_key(raw)
    plain = b"Subject: one\n\nbody\n"
    assert message_key(b"From someone@example.com Sat Jan  1 00:00:00 2000\r\n" + plain.replace(b"\n", b"\r\n")) == message_key(plain)
