"""spamclf.mail.mime against the standard library's parser (compat32), which it must read mail exactly as:
the same text parts, in the same order, with the same decoded bodies."""

from __future__ import annotations

import base64
import email
import email.policy
import quopri
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spamclf.mail import mime

MAX_DEPTH = 16


def stdlib_text_parts(raw: bytes) -> list[tuple[str, bytes]]:
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    return [(p.get_content_type(), p.get_payload(decode=True)) for p in msg.walk() if _is_text_leaf(p)]


def _is_text_leaf(part) -> bool:
    return part.get_content_maintype() == "text" and not part.is_multipart()


def our_text_parts(raw: bytes) -> list[tuple[str, bytes]]:
    found = []

    def walk(part):
        if part.children is not None:
            for child in part.children:
                walk(child)
        elif part.maintype == "text":
            found.append((part.content_type, part.payload()))

    walk(mime.parse(raw, MAX_DEPTH))
    return found


# --- random MIME-shaped messages -----------------------------------------------------------------

_words = st.text(st.sampled_from("abc xyz-=.:;\t€é<>\"'"), max_size=40)
_encodings = st.sampled_from(["7bit", "8bit", "base64", "quoted-printable", "BASE64", "binary"])
_eols = st.sampled_from(["\n", "\r\n"])


@st.composite
def leaf(draw, eol):
    subtype = draw(st.sampled_from(["plain", "html", "enriched"]))
    encoding = draw(_encodings)
    text = eol.join(draw(st.lists(_words, max_size=4)))
    data = text.encode("utf-8")
    if encoding.lower() == "base64":
        body = base64.encodebytes(data).decode("ascii").replace("\n", eol)
        if draw(st.booleans()):
            body = body[: draw(st.integers(0, len(body)))]  # cut short: padding errors
    elif encoding == "quoted-printable":
        body = quopri.encodestring(data).decode("ascii").replace("\n", eol)
    else:
        body = text
    charset = draw(st.sampled_from(["", '; charset="utf-8"', "; charset=us-ascii", "; CHARSET=latin-1"]))
    headers = f"Content-Type: text/{subtype}{charset}{eol}Content-Transfer-Encoding: {encoding}{eol}"
    if draw(st.booleans()):
        headers = f"X-Note: {draw(_words)}{eol}" + headers
    return headers + eol + body


@st.composite
def part(draw, eol, depth=0):
    kind = draw(st.sampled_from(["leaf", "leaf", "multipart", "message"] if depth < 3 else ["leaf"]))
    if kind == "leaf":
        return draw(leaf(eol))
    if kind == "message":
        return f"Content-Type: message/rfc822{eol}{eol}Subject: inner{eol}" + draw(part(eol, depth + 1))
    boundary = draw(st.sampled_from(["b1", "==_x", "a b", "--dash", "BOUND"])) + str(depth)
    children = draw(st.lists(part(eol, depth + 1), min_size=0, max_size=3))
    preamble = draw(st.sampled_from(["", "This is a MIME message." + eol]))
    out = f'Content-Type: multipart/{draw(st.sampled_from(["mixed", "alternative"]))}; boundary="{boundary}"{eol}{eol}{preamble}'
    for child in children:
        out += f"--{boundary}{draw(st.sampled_from(['', '  ', chr(9)]))}{eol}{child}{eol}"
    if draw(st.booleans()):  # a closing boundary, or none (the message just ends)
        out += f"--{boundary}--{eol}" + draw(st.sampled_from(["", "epilogue" + eol]))
    return out


@st.composite
def message(draw):
    eol = draw(_eols)
    return (f"From: a@example.com{eol}Subject: {draw(_words)}{eol}" + draw(part(eol))).encode("utf-8")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(message())
def test_random_mime_shapes_give_the_standard_librarys_text_parts(raw):
    assert our_text_parts(raw) == stdlib_text_parts(raw)


def test_the_sample_corpus_gives_the_standard_librarys_text_parts(sample):
    files = sorted(p for p in Path(sample).rglob("*") if p.is_file() and p.name != "NOTICE")
    assert len(files) >= 300
    for path in files:
        raw = path.read_bytes()
        assert our_text_parts(raw) == stdlib_text_parts(raw), path.name
