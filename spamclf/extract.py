"""Text extraction: raw message bytes in, the text a classifier learns from out.

The output is plain text: the subject, prefixed tokens for the headers that carry
signal (``hfrom_example_com``), and the visible text of every text part. Prefixed
tokens are made of word characters only, so any word tokenizer keeps them whole.

Extraction never raises on message content: whatever the bytes, it returns text
(possibly empty). Work per message is bounded by the caps in the ``extract`` config.
"""

from __future__ import annotations

import codecs
import email.header
import email.parser
import email.policy
import email.utils
import html
import html.parser
import re
import unicodedata
from dataclasses import dataclass

DEFAULT_MAX_BYTES = 10_000_000
DEFAULT_MAX_PARTS = 256
DEFAULT_MAX_DEPTH = 16
DEFAULT_MAX_CHARS = 200_000

# Zero-width and formatting characters spammers put inside words to dodge filters.
_INVISIBLE = dict.fromkeys(
    [0x00AD, 0x034F, 0x061C, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180E, 0x2060, 0x2061, 0x2062, 0x2063, 0x2064, 0xFEFF]
    + list(range(0x200B, 0x2010))
    + list(range(0x202A, 0x202F))
    + list(range(0x2066, 0x206A))
)
_NON_WORD = re.compile(r"[^0-9a-z]+")
_HOST = re.compile(r"(?:from|by)\s+([A-Za-z0-9][A-Za-z0-9.-]{1,200})", re.I)
_ADDR_DOMAIN = re.compile(r"@([A-Za-z0-9.-]+)")
_URL = re.compile(r"(?i)\b(?:https?|ftp)://([^/\s\"'<>:?#]+)")
_SPACES = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_BLOCK_TAGS = frozenset(
    "p br div td th tr li ul ol table h1 h2 h3 h4 h5 h6 title blockquote pre hr center body html head".split()
)
_SKIP_TAGS = frozenset(("script", "style", "head", "title_skip"))

_PARSER = email.parser.BytesParser(policy=email.policy.compat32)


@dataclass(frozen=True)
class ExtractOptions:
    """Caps on the work done per message (the ``extract`` config section)."""

    headers: bool = True
    max_bytes: int = DEFAULT_MAX_BYTES
    max_parts: int = DEFAULT_MAX_PARTS
    max_depth: int = DEFAULT_MAX_DEPTH
    max_chars: int = DEFAULT_MAX_CHARS

    @classmethod
    def from_config(cls, config: dict) -> "ExtractOptions":
        return cls(**config["extract"])


def tokenish(text: str, limit: int = 60) -> str:
    """Lower-case ``text`` reduced to ``[0-9a-z_]`` so it stays one token (``mail.example.com`` -> ``mail_example_com``)."""
    return _NON_WORD.sub("_", text.lower()).strip("_")[:limit]


def normalize(text: str) -> str:
    """Undo cheap obfuscation: compatibility forms (full-width letters), invisible characters, control bytes."""
    text = unicodedata.normalize("NFKC", text)
    text = text.translate(_INVISIBLE)
    return _CONTROL.sub(" ", text)


def _decode_bytes(data: bytes, charset: str | None) -> str:
    """Decode with the declared charset when Python knows it and it fits; else UTF-8, else Latin-1."""
    if charset:
        charset = charset.strip().strip("\"'").lower()
        try:
            codecs.lookup(charset)
        except (LookupError, ValueError):
            charset = None
    for candidate in ([charset] if charset else []) + ["utf-8"]:
        try:
            return data.decode(candidate)
        except (UnicodeDecodeError, LookupError, ValueError):
            continue
    # A lying or unknown charset: keep the characters that decode, lose none of the ASCII.
    if charset:
        try:
            return data.decode(charset, errors="replace")
        except (LookupError, ValueError):
            pass
    return data.decode("latin-1")


def decode_header(value) -> str:
    """An RFC 2047 header value as text, whatever its encoded words say."""
    if value is None:
        return ""
    if isinstance(value, email.header.Header):
        value = str(value)
    value = str(value)
    try:
        parts = email.header.decode_header(value)
    except Exception:  # malformed encoded words: keep the raw text
        return normalize(value)
    out = []
    for chunk, charset in parts:
        if isinstance(chunk, bytes):
            out.append(_decode_bytes(chunk, charset))
        else:
            out.append(chunk)
    return normalize("".join(out))


class _HTMLText(html.parser.HTMLParser):
    """Visible text of an HTML document, with link and image counts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.skip_depth = 0
        self.links = 0
        self.images = 0
        self.link_domains: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self.skip_depth += 1
        elif tag == "a":
            self.links += 1
            for name, value in attrs:
                if name == "href" and value:
                    match = _URL.search(value)
                    if match and len(self.link_domains) < 50:
                        self.link_domains.append(match.group(1))
        elif tag == "img":
            self.images += 1
        if tag in _BLOCK_TAGS:
            self.chunks.append(" ")

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self.skip_depth:
            self.skip_depth -= 1
        if tag in _BLOCK_TAGS:
            self.chunks.append(" ")

    def handle_data(self, data):
        # Chunks are joined without a space: "fr<!-- x -->ee" and "F<b>REE</b>" read as one word.
        if not self.skip_depth:
            self.chunks.append(data)


def html_to_text(markup: str) -> tuple[str, list[str]]:
    """Visible text of ``markup`` and the signal tokens it yields (link count, link domains, image-only)."""
    parser = _HTMLText()
    try:
        parser.feed(markup)
        parser.close()
    except Exception:  # HTMLParser is lenient, but never let markup stop extraction
        pass
    text = html.unescape("".join(parser.chunks))
    signals = [f"htmllinks_{min(parser.links, 20) // 5 * 5}", f"htmlimages_{min(parser.images, 20) // 5 * 5}"]
    signals += ["linkdom_" + tokenish(d) for d in parser.link_domains]
    if parser.images and len(text.split()) < 10:
        signals.append("htmlimageonly")
    return text, signals


def _domain(address_header: str) -> str:
    match = _ADDR_DOMAIN.search(address_header or "")
    return tokenish(match.group(1)) if match else ""


def _header_tokens(msg) -> list[str]:
    """Prefixed tokens from the headers that carry signal."""
    tokens: list[str] = []

    def add(prefix: str, value: str) -> None:
        value = tokenish(value)
        if value:
            tokens.append(f"{prefix}_{value}")

    subject = decode_header(msg.get("Subject"))
    tokens += ["hsubj_" + w for w in (tokenish(w, 40) for w in subject.split()) if w]
    for name, prefix in (("From", "hfrom"), ("To", "hto"), ("Reply-To", "hreplyto"), ("Return-Path", "hreturn")):
        value = decode_header(msg.get(name))
        add(prefix, _domain(value))
        if name == "From":
            real, _ = email.utils.parseaddr(value)
            tokens += ["hfromname_" + w for w in (tokenish(w, 30) for w in real.split()) if w]
    for received in (msg.get_all("Received") or [])[:8]:
        for host in _HOST.findall(str(received))[:2]:
            add("hrcvd", host)
    for name, prefix in (("X-Mailer", "hmailer"), ("User-Agent", "hmailer")):
        value = decode_header(msg.get(name))
        tokens += [f"{prefix}_{w}" for w in (tokenish(w, 30) for w in value.split()[:4]) if w]
    add("hmsgid", _domain(str(msg.get("Message-ID") or "")))
    add("hctype", msg.get_content_type())
    if msg.get("X-Priority"):
        add("hprio", str(msg.get("X-Priority")).split()[0] if str(msg.get("X-Priority")).split() else "")
    return tokens


def _walk(msg, opts: ExtractOptions):
    """Leaf parts of ``msg`` with their depth, iteratively, within the part and depth caps."""
    stack = [(msg, 0)]
    seen = 0
    while stack and seen < opts.max_parts:
        part, depth = stack.pop()
        seen += 1
        payload = part.get_payload() if part.is_multipart() else None
        if isinstance(payload, list):
            if depth < opts.max_depth:
                stack.extend((p, depth + 1) for p in reversed(payload) if hasattr(p, "get_payload"))
            continue
        yield part, depth


def _part_text(part, opts: ExtractOptions, signals: list[str]) -> str:
    ctype = part.get_content_type()
    maintype = part.get_content_maintype()
    filename = part.get_filename() if hasattr(part, "get_filename") else None
    disposition = str(part.get("Content-Disposition") or "").lower()
    if maintype != "text" or "attachment" in disposition or filename:
        signals.append("attach_" + tokenish(ctype))
        if filename:
            filename = decode_header(filename)
            signals.append("attachname_" + tokenish(filename, 40))
            if "." in filename:
                signals.append("attachext_" + tokenish(filename.rsplit(".", 1)[-1], 10))
        if maintype != "text":
            return ""
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if data is None:
        raw = part.get_payload()
        data = raw.encode("utf-8", "replace") if isinstance(raw, str) else b""
    text = _decode_bytes(data[: opts.max_bytes], part.get_content_charset())
    charset = part.get_content_charset()
    if charset:
        signals.append("charset_" + tokenish(charset, 20))
    if ctype == "text/html" or (ctype == "text/plain" and re.search(r"(?i)<(html|body|a\s+href|div|table|font)\b", text[:5000])):
        text, html_signals = html_to_text(text)
        signals += html_signals
    return text


def extract(raw: bytes, opts: ExtractOptions = ExtractOptions()) -> str:
    """The text a classifier sees for one raw message. Never raises on message content."""
    if not isinstance(raw, (bytes, bytearray)):
        raise TypeError("extract() takes the raw message as bytes")
    raw = bytes(raw[: opts.max_bytes])
    try:
        msg = _PARSER.parsebytes(raw)
    except Exception:  # not parseable as mail at all: score the bytes as text
        return normalize(_decode_bytes(raw, None))[: opts.max_chars]
    pieces: list[str] = []
    signals: list[str] = []
    try:
        pieces.append(decode_header(msg.get("Subject")))
        if opts.headers:
            signals += _header_tokens(msg)
        for part, _depth in _walk(msg, opts):
            pieces.append(_part_text(part, opts, signals))
            if sum(len(p) for p in pieces) > opts.max_chars:
                break
    except Exception:  # a defect email's parser tolerated but we tripped on: keep what we have
        signals.append("extracterror")
    text = normalize(" ".join(p for p in pieces if p))[: opts.max_chars]
    if opts.headers:
        signals += ["urldom_" + tokenish(d) for d in _URL.findall(text)[:50]]
    text = _SPACES.sub(" ", text).strip()
    # Structure tokens (headers, HTML, attachments) are one switch: off gives the article's plain text.
    return (" ".join(signals) + "\n" + text) if signals and opts.headers else text
