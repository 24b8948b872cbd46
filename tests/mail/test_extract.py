"""Text extraction on the structures real mail uses: what a classifier must see, and what it must not."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spamclf.mail import mime
from spamclf.mail.extract import ExtractOptions, extract, html_to_text, normalize


def test_spammer_obfuscation_is_normalised():
    assert normalize("Vi\u200bag\u00adra \u200dnow") == "Viagra now"  # zero-width and soft hyphen
    assert normalize("Buy V\u0456\u0430gr\u0430 and \u0501rugs") == "Buy Viagra and drugs"  # Cyrillic look-alikes
    assert normalize("привет мир, καλημέρα") == "привет мир, καλημέρα"  # real Russian and Greek untouched
    assert normalize("ＦＲＥＥ") == "FREE"  # full-width forms
    text, _ = html_to_text("<p>F<b>R</b>EE v<!-- x -->iag<!---->ra</p>")
    assert "FREE viagra" in text


def test_html_visible_text_and_cheap_signals():
    markup = (
        "<!DOCTYPE html><html><head><style>p{color:red}</style><script>var s='<p>hidden</p>';</script></head>"
        "<body><a href=' http://Evil.Example.com/x'>click &amp; win</a><a href=\"https://b.example.org\">b</a>"
        "<img src=x>1 &lt; 2</body></html>"
    )
    text, signals = html_to_text(markup)
    assert "click & win" in text and "1 < 2" in text
    assert "hidden" not in text and "color" not in text and "DOCTYPE" not in text
    assert {"linkdom_evil_example_com", "linkdom_b_example_org"} <= set(signals)
    _, only_image = html_to_text("<html><body><img src='http://x/y.gif'></body></html>")
    assert "htmlimageonly" in only_image


def test_transfer_encodings_and_charsets():
    body = base64.b64encode("Größe: 3 € only".encode("iso-8859-15"))
    msg = b"Subject: =?utf-8?b?" + base64.b64encode("Grüße".encode()) + b"?=\nContent-Type: text/plain; charset=iso-8859-15\n"
    msg += b"Content-Transfer-Encoding: base64\n\n" + body
    text = extract(msg)
    assert "Grüße" in text and "Größe: 3 € only" in text and "charset_iso_8859_15" in text
    qp = b"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\ncaf=C3=A9 =\nau lait"
    assert "café au lait" in extract(qp)


CHINESE = "这是一封关于发票的邮件，请查收附件并尽快付款。我们的产品价格优惠，欢迎订购。"
JAPANESE = "こんにちは、これは日本語のテストメールです。ご確認ください。無料でお試しいただけます。"


@pytest.mark.parametrize(
    "text, codec, declared",
    [
        (CHINESE, "gb2312", None),  # an 8-bit body with no charset
        (JAPANESE, "shift_jis", None),
        (CHINESE, "gb2312", "us-ascii"),  # a declared charset that does not decode it
        (JAPANESE, "shift_jis", "utf-8"),
    ],
)
def test_undeclared_or_lying_cjk_charsets_are_detected(text, codec, declared):
    content_type = f"Content-Type: text/plain; charset={declared}\n" if declared else ""
    raw = f"Subject: x\n{content_type}Content-Transfer-Encoding: 8bit\n\n".encode() + text.encode(codec)
    assert normalize(text) in extract(raw)


def test_cjk_detection_never_overrides_a_charset_that_decodes_nor_western_text():
    gb = CHINESE.encode("gb2312")
    declared = extract(b"Content-Type: text/plain; charset=iso-8859-1\n\n" + gb)
    assert normalize(CHINESE) not in declared and "ÕâÊÇÒ»" in declared  # the sender's word stands
    western = "Café résumé naïve, “quoted” façade, déjà vu"
    assert normalize(western) in extract(b"Subject: x\n\n" + western.encode("cp1252"))


def test_attachments_are_reduced_to_type_and_name():
    msg = (
        b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nsee attached\n"
        b"--b\nContent-Type: application/pdf; name=invoice.pdf\nContent-Disposition: attachment; filename=invoice.pdf\n"
        b"Content-Transfer-Encoding: base64\n\n" + base64.b64encode(b"%PDF-1.4 secret bytes") + b"\n--b--\n"
    )
    text = extract(msg)
    assert "see attached" in text
    assert {"attach_application_pdf", "attachname_invoice_pdf", "attachext_pdf"} <= set(text.split())
    assert "secret" not in text


def test_forwarded_message_is_read_as_a_message():
    inner = b"Subject: inner offer\nFrom: x@spam.example\n\ncheap pills inside"
    msg = b"Subject: Fwd\nContent-Type: message/rfc822\n\n" + inner
    text = extract(msg)
    assert "inner offer" in text and "cheap pills inside" in text


def test_header_tokens_and_plain_mode():
    msg = b"From: Bob <bob@mail.example.com>\nReceived: from relay.example.net by mx.example.org\nSubject: hi\n\nbody"
    tokens = set(extract(msg).split())
    assert {"hfrom_mail_example_com", "hrcvd_relay_example_net", "hsubj_hi", "hfromname_bob"} <= tokens
    assert extract(msg, ExtractOptions(headers=False)) == "hi body"


def test_received_hosts_are_read_whatever_the_case_and_two_a_header():
    msg = b"Received: FROM Relay.Example.NET (helo) By MX.example.org; from third.example.com\nSubject: s\n\nbody"
    tokens = extract(msg).split()
    assert [t for t in tokens if t.startswith("hrcvd_")] == ["hrcvd_relay_example_net", "hrcvd_mx_example_org"]


@pytest.mark.parametrize(
    "headers",
    [
        b"",
        b"Content-Type: text/plain\n",
        b'Content-Type: text/plain; charset="ISO-8859-1"\n',
        b"Content-Type: text/plain; CHARSET=utf-8; format=flowed\n",
        b'Content-Type: application/pdf; NAME="a.pdf"\n',
        b"Content-Type: text/plain; x-unnamed=1\nContent-Disposition: inline\n",
        b"Content-Disposition: attachment; filename*0*=utf-8''%E2%82%AC; filename*1=.txt\nContent-Type: text/html\n",
        b'Content-Type: text/plain; charset*=us-ascii\'en\'utf-8\nContent-Disposition: attachment; FileName="x y.doc"\n',
    ],
)
def test_parameter_shortcuts_agree_with_the_standard_library(headers):
    part = mime.parse(headers + b"\nbody", 4)
    assert part.get_filename() == part.mime.get_filename()
    assert part.get_content_charset() == part.mime.get_content_charset()


def test_size_caps_bound_the_text():
    opts = ExtractOptions(max_chars=1000)
    text = extract(b"Subject: s\n\n" + b"word " * 100_000, opts)
    assert len(text.split("\n", 1)[1]) <= 1000
    many = b"Content-Type: multipart/mixed; boundary=b\n\n" + b"--b\n\npart\n" * 100 + b"--b--\n"
    body = extract(many, ExtractOptions(max_parts=10)).split("\n", 1)[1]
    assert body.split().count("part") == 9  # the multipart container is the tenth part visited


def _body(raw: bytes, **opts) -> str:
    return extract(raw, ExtractOptions(**opts)).split("\n", 1)[-1]


def test_boundaries_as_the_standard_parser_reads_them():
    quoted = b'Content-Type: multipart/mixed; boundary="a b:c"\n\npreamble\n--a b:c\n\nfirst\n--a b:c  \n\nsecond\n--a b:c--\nepilogue\n'
    assert _body(quoted) == "first second"  # quotes, a colon, blanks after the boundary; no preamble or epilogue
    unclosed = b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\nonly part, never closed"
    assert _body(unclosed) == "only part, never closed"
    crlf = b"Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nplain\r\n--b--\r\n"
    assert _body(crlf) == "plain"
    not_a_line = b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\nx --b y\n--bz\n--b--\n"
    assert _body(not_a_line) == "x --b y --bz"  # a boundary only counts as a whole line
    no_start = b"Content-Type: multipart/mixed; boundary=b\n\nall text\n--b--\nepilogue"
    assert _body(no_start) == "all text"  # no opening boundary: the text before the closing one is the body


def test_nested_multipart_and_forwarded_message():
    inner = b"Content-Type: multipart/alternative; boundary=in\n\n--in\n\ninner text\n--in\nContent-Type: text/html\n\n<p>inner html</p>\n"
    forwarded = b"Content-Type: message/rfc822\n\nSubject: fwd subject\n\nforwarded body\n"
    msg = b"Content-Type: multipart/mixed; boundary=out\n\n--out\n" + inner + b"--out\n" + forwarded + b"--out--\n"
    # The outer boundary ends the inner multipart, whose closing boundary is missing.
    assert _body(msg) == "inner text inner html fwd subject forwarded body"
    assert _body(msg, max_depth=1) == ""  # the parts of the nested containers are past the depth cap


def test_transfer_encodings_inside_parts():
    b64 = base64.b64encode(b"encoded words here")
    junk = b64[:8] + b"\n!!\n" + b64[8:] + b"\n"  # junk characters in base64 are skipped
    msg = b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Transfer-Encoding: base64\n\n" + junk
    msg += b"--b\nContent-Transfer-Encoding: Quoted-Printable\n\nsoft=\nbreak, caf=C3=A9\n--b--\n"
    assert _body(msg) == "encoded words here softbreak, café"


def test_header_block_edge_cases():
    assert _body(b"Subject: no blank line\nthe body starts here") == "no blank line the body starts here"
    assert _body(b"Subject: only headers\nFrom: a@b.example\n") == "only headers"
    folded = b"From me@here  Mon Jan  1 00:00:00 2001\nSubject: folded\n  subject\n\nbody"
    assert _body(folded) == "folded subject body"  # the mbox envelope line is not a header
    assert _body(b"") == "" and _body(b"\n\n") == ""


def test_untidy_text_for_scoring_gives_the_same_tokens(sample):
    # Scoring skips collapsing whitespace (extract(tidy=False)): every tokeniser must see the same
    # tokens as in the tidy text training and preprocess keep, on real mail and on odd whitespace.
    from spamclf.model.features import analyze, lookup_terms

    raws = [p.read_bytes() for p in sorted(sample.rglob("*.txt"))]
    raws.append("Subject: a\u00a0b\u2003c\n\nx\u3000y\t\tz \u2028 w\r\n\u00e9t\u00e9   caf\u00e9 \u65e5\u672c\u8a9e\u306e\u6587".encode())

    def in_any_vocabulary(tokens):  # lookup_terms may add ASCII words of one or of over 80 characters
        return [t for t in tokens if (len(t) >= 2 or not t.isascii()) and len(t) <= 80]

    differ = 0
    for raw in raws:
        tidy, untidy = extract(raw), extract(raw, tidy=False)
        differ += tidy != untidy
        assert in_any_vocabulary(lookup_terms(untidy)) == in_any_vocabulary(lookup_terms(tidy)) == analyze(tidy)
        assert analyze(untidy, ngram_max=2) == analyze(tidy, ngram_max=2)
    assert differ > len(raws) // 2  # the texts themselves do differ


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from("aZ09_ .-/:@\t\x1c\x1f\u00e9\u212a\u00a0"), max_size=80), st.sampled_from([60, 5]))
def test_tokenish_is_one_token_of_the_lower_cased_words(text, limit):
    import re

    from spamclf.mail.extract import tokenish

    assert tokenish(text, limit) == re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_")[:limit]
