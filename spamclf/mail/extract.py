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
import email.utils
import html
import itertools
import re
import unicodedata
from dataclasses import dataclass

from ..config import defaults
from . import mime

_DEFAULTS = defaults()["extract"]  # the config schema is the one home of every default

# Zero-width and formatting characters spammers put inside words to dodge filters (a regex removes
# them many times faster than str.translate with a dict).
_INVISIBLE = re.compile("[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
# Cyrillic and Greek letters that look like Latin ones, as spammers use them to disguise words.
_LOOKALIKES = {
    "а": "a", "в": "b", "е": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c", "т": "t", "у": "y",
    "х": "x", "і": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ү": "y", "һ": "h", "ӏ": "l", "ь": "b",
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T", "Х": "X",
    "І": "I", "Ј": "J", "Ѕ": "S", "Ү": "Y", "α": "a", "ο": "o", "ρ": "p", "ν": "v", "ι": "i", "κ": "k", "υ": "u",
    "χ": "x", "ε": "e", "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N",
    "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
}
_CONFUSABLES = str.maketrans(_LOOKALIKES)
_LOOKALIKE_CLASS = "[" + "".join(_LOOKALIKES) + "]"
_HAS_CONFUSABLE = re.compile(_LOOKALIKE_CLASS)
_MIXED_WORD = re.compile(r"\w*" + _LOOKALIKE_CLASS + r"\w*")
_ASCII_LETTER = re.compile(r"[A-Za-z]")
_NON_WORD = re.compile(r"[^0-9a-z]+")
_TOKENISH_BYTES = bytes(b if b in b"0123456789abcdefghijklmnopqrstuvwxyz" else 32 for b in range(256))
_HOST = re.compile(r"(?:from|by)\s+([a-z0-9][a-z0-9.-]{1,200})")  # in lower-cased text
_ADDR_DOMAIN = re.compile(r"@([A-Za-z0-9.-]+)")
# Atoms, blanks and simple quoted strings, then "<": a display name, with no backtracking blow-up.
_NAME_ADDR = re.compile(r'((?:"[^"\\\r]*"|[^()<>@,:;"\[\]\\])*)<')
_URL = re.compile(r"(?i)\b(?:https?|ftp)://([^/\s\"'<>:?#]+)")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# _CONTROL as a byte table: on ASCII text, translating the encoded bytes beats the regex.
_CONTROL_BYTES = bytes(32 if re.match(_CONTROL, chr(b)) else b for b in range(256))
_BLOCK_TAGS = frozenset(
    "p br div td th tr li ul ol table h1 h2 h3 h4 h5 h6 title blockquote pre hr center body html head".split()
)
# A tag: an element, <!DOCTYPE ...>, <?xml ...?> or </...>, to the next ">" (group 2 empty when there is none).
_TAG = re.compile(r"<(?:/?([A-Za-z][A-Za-z0-9]*)|[!?/])[^>]*(>?)")
_HREF = re.compile(r"""(?i)\bhref\s*=\s*["']?\s*([^"'\s>]+)""")
_HIDDEN_OPEN = re.compile(r"<(script|style)\b")

_REFUSED_CODECS = frozenset(("punycode", "idna", "undefined", "unicode_internal"))
_MAX_HEADER_CHARS = 8192  # of one header value: a megabyte of encoded words would take seconds to decode
_MAX_HEADER_BYTES = 256 * 1024  # of the header block: past this the rest is read as body
_MAX_MARKUP_FACTOR = 2  # HTML read per message, as a multiple of max_chars
_HEADER_ENDS = (b"\n\n", b"\n\r\n", b"\r\r")  # a line break and a blank line
# Searched in lower-cased bytes: a literal start makes the search fast, where (?i) would not.
_CONTAINER_TYPE = re.compile(rb"content-type:\s*(?:multipart|message)/")
_MAX_MULTIPART_LINES = 250_000
_LINE_BREAK = re.compile(rb"\r\n|\r|\n")
_BOUNDARY_LINE = re.compile(rb"[\r\n]--")
_LOOKS_HTML = re.compile(r"(?i)<(html|body|a\s+href|div|table|font)\b")


@dataclass(frozen=True)
class ExtractOptions:
    """Caps on the work done per message (the ``extract`` config section)."""

    headers: bool = _DEFAULTS["headers"]
    max_bytes: int = _DEFAULTS["max_bytes"]
    max_parts: int = _DEFAULTS["max_parts"]
    max_depth: int = _DEFAULTS["max_depth"]
    max_chars: int = _DEFAULTS["max_chars"]

    @classmethod
    def from_config(cls, config: dict) -> "ExtractOptions":
        return cls(**config["extract"])


def tokenish(text: str, limit: int = 60) -> str:
    """Lower-case ``text`` reduced to ``[0-9a-z_]`` so it stays one token (``mail.example.com`` -> ``mail_example_com``):
    each run of other characters one ``_``, none at either end."""
    text = text.lower()
    if not text.isascii():
        return _NON_WORD.sub("_", text).strip("_")[:limit]
    if text.isalnum():  # the common case, already one token
        return text[:limit]
    # the same as the regex, for ASCII text, without it: the other bytes become blanks, and split() drops the runs
    return "_".join(text.encode("ascii").translate(_TOKENISH_BYTES).decode("ascii").split())[:limit]


def _unmix(match: re.Match) -> str:
    word = match.group(0)
    return word.translate(_CONFUSABLES) if _ASCII_LETTER.search(word) else word


def normalize(text: str) -> str:
    """Undo cheap obfuscation: compatibility forms (full-width letters), invisible characters, control bytes,
    and Cyrillic or Greek look-alikes inside otherwise Latin words (``Vіаgrа`` -> ``Viagra``).

    Words wholly in another script are left alone: only a mix of scripts inside one word is a disguise.
    ASCII text has none of these, only control bytes: the common case skips the Unicode work.
    """
    if text.isascii():
        return text.encode("ascii").translate(_CONTROL_BYTES).decode("ascii")
    text = unicodedata.normalize("NFKC", text)
    text = _INVISIBLE.sub("", text)
    if _HAS_CONFUSABLE.search(text):
        text = _MIXED_WORD.sub(_unmix, text)
    return _CONTROL.sub(" ", text)


def _text_codec(charset: str | None) -> str | None:
    """The codec name for a declared charset, or None when Python lacks it or it is not a plain text encoding.

    Refused on purpose: bytes-to-bytes codecs (base64, zlib...), and punycode/idna and the
    ``*_escape`` codecs, whose decoders are slow or mean something else on long input.
    """
    if not charset:
        return None
    charset = charset.strip().strip("\"'").lower()[:40]
    try:
        info = codecs.lookup(charset)
    except (LookupError, ValueError, TypeError):
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _REFUSED_CODECS or info.name.endswith("_escape"):
        return None
    return info.name


def _utf16_guess(data: bytes) -> str | None:
    """``utf-16`` for a BOM, or -le/-be when every other byte is NUL (an undeclared UTF-16 body)."""
    if data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return "utf-16"
    sample = data[:4000]
    if len(sample) >= 8:
        even, odd = sample[0::2].count(0), sample[1::2].count(0)
        half = len(sample) // 2
        if odd > 0.4 * half and even < 0.1 * half:
            return "utf-16-le"
        if even > 0.4 * half and odd < 0.1 * half:
            return "utf-16-be"
    return None


def _decode_bytes(data: bytes, charset: str | None) -> str:
    """Decode with the declared charset when Python knows it and it fits; else UTF-16/UTF-8 if they fit;
    else the declared charset with replacement when that loses little; else Windows-1252, else Latin-1."""
    codec = _text_codec(charset)
    candidates = [c for c in (codec, _utf16_guess(data), "utf-8") if c]
    for candidate in candidates:
        try:
            return data.decode(candidate)
        except (UnicodeError, LookupError, ValueError):
            continue
    # A lying or unknown charset: keep what decodes if most of it does, lose none of the ASCII.
    if codec:
        try:
            text = data.decode(codec, errors="replace")
            if text.count("\ufffd") <= max(2, len(text) // 100):
                return text
        except (UnicodeError, LookupError, ValueError):
            pass
    cjk = _cjk_guess(data)
    if cjk:
        return data.decode(cjk, errors="replace")
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


# The East Asian multi-byte encodings that an undeclared or lying 8-bit body is guessed in; Windows-1252
# would turn them into mojibake. For Western text charset-normalizer's guesses (cp1257 for French) are
# worse than the Windows-1252 fallback, so only these are taken from it.
_CJK_CODECS = frozenset(
    codecs.lookup(name).name
    for name in ("gb2312", "gbk", "gb18030", "big5", "big5hkscs", "cp950", "shift_jis", "cp932", "shift_jisx0213",
                 "euc_jp", "euc_jis_2004", "euc_kr", "cp949", "johab")
)  # fmt: skip
_CJK_SAMPLE = 16_384  # bytes charset-normalizer looks at: enough to tell, and bounded
_HIGH_BYTES = bytes(range(0x80, 0x100))


def _cjk_guess(data: bytes) -> str | None:
    """The CJK codec of a body that no declared charset, UTF-16 or UTF-8 decodes, or None.

    Asked only when at least a fifth of the bytes are 8-bit (CJK text is mostly 8-bit; Western text
    with accents is not), so charset-normalizer never runs on ordinary mail.
    """
    sample = data[:_CJK_SAMPLE]
    if len(sample) < 8 or len(sample) - len(sample.translate(None, _HIGH_BYTES)) < len(sample) // 5:
        return None
    from charset_normalizer import from_bytes

    best = from_bytes(sample).best()
    try:
        name = codecs.lookup(best.encoding).name if best is not None else None
    except LookupError:
        return None
    return name if name in _CJK_CODECS else None


def decode_header(value: str | None) -> str:
    """An RFC 2047 header value as text, whatever its encoded words say."""
    if value is None:
        return ""
    value = value[:_MAX_HEADER_CHARS]
    if "=?" not in value:  # no encoded word: what email.header.decode_header returns, without its regex
        return normalize(value)
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


def _drop_comments(markup: str) -> str:
    """``markup`` without ``<!-- ... -->``; an unclosed comment hides the rest, as in a browser. Linear time."""
    out, pos = [], 0
    while True:
        start = markup.find("<!--", pos)
        if start < 0:
            out.append(markup[pos:])
            return "".join(out)
        out.append(markup[pos:start])
        end = markup.find("-->", start + 4)
        if end < 0:
            return "".join(out)
        pos = end + 3


def _drop_hidden_blocks(markup: str) -> str:
    """``markup`` without the content of ``<script>`` and ``<style>`` elements. Linear time."""
    lowered = markup.lower()
    out, pos = [], 0
    while True:
        match = _HIDDEN_OPEN.search(lowered, pos)
        if not match:
            out.append(markup[pos:])
            return "".join(out)
        out.append(markup[pos : match.start()])
        close = lowered.find("</" + match.group(1), match.end())
        if close < 0:
            return "".join(out)
        pos = close


def html_to_text(markup: str) -> tuple[str, list[str]]:
    """Visible text of ``markup`` and the signal tokens it yields (link count, link domains, image-only).

    A linear scan, not html.parser: that parser takes quadratic time on unclosed comments and
    similar junk, which spam supplies. A tag runs from ``<`` to the next ``>``, as browsers read it;
    an unclosed one hides the rest. Inline tags vanish without a space, so ``F<b>REE</b>`` and
    ``fr<!-- x -->ee`` read as one word. One regex substitution removes the tags; Python code runs
    once per tag only to tell block tags, links and images.
    """
    found: list[tuple[str, str]] = []  # (name, tag) of the closed a and img tags, in order

    def tag_gap(tag: re.Match) -> str:
        name = tag.group(1)
        if not name or not tag.group(2):
            return ""
        name = name.lower()
        if name == "a" or name == "img":
            found.append((name, tag.group(0)))
        return " " if name in _BLOCK_TAGS else ""

    text = html.unescape(_TAG.sub(tag_gap, _drop_hidden_blocks(_drop_comments(markup))))
    links = images = 0
    domains: list[str] = []
    for name, tag in found:
        if name == "img":
            images += 1
        elif tag[1] != "/":
            links += 1
            href = _HREF.search(tag)
            if href and len(domains) < 50:
                url = _URL.search(html.unescape(href.group(1)))
                if url:
                    domains.append(url.group(1))
    signals = [f"htmllinks_{min(links, 20) // 5 * 5}", f"htmlimages_{min(images, 20) // 5 * 5}"]
    signals += ["linkdom_" + tokenish(d) for d in domains]
    if images and len(text.split()) < 10:
        signals.append("htmlimageonly")
    return text, signals


def _url_hosts(text: str, limit: int = 50) -> list[str]:
    """``_URL.findall(text)[:limit]``, found from each ``://``: a literal search is several times faster than
    the case-insensitive pattern tried at every position, and a scheme is at most 5 characters before it."""
    hosts: list[str] = []
    end, colon = 0, text.find("://")
    while colon >= 0 and len(hosts) < limit:
        for start in range(max(colon - 5, end), colon - 2):
            match = _URL.match(text, start)
            if match:
                hosts.append(match.group(1))
                end = match.end()
                break
        colon = text.find("://", max(colon + 1, end))
    return hosts


def _domain(address_header: str) -> str:
    match = _ADDR_DOMAIN.search(address_header or "")
    return tokenish(match.group(1)) if match else ""


def _display_name_words(address_header: str) -> list[str]:
    """The words of the display name that ``email.utils.parseaddr`` reads in an address header.

    That parser goes character by character; the common forms are read here with one regex instead.
    With no comment, group or angle bracket it finds no name. Before ``<`` its name is the atoms and
    quoted strings there, joined by spaces: the same words as that text with its quotes made spaces.
    """
    if "(" not in address_header:
        if "<" not in address_header and ":" not in address_header:
            return []
        name_addr = _NAME_ADDR.match(address_header)
        if name_addr:
            return name_addr.group(1).replace('"', " ").split()
    return email.utils.parseaddr(address_header)[0].split()


def _header_tokens(msg: mime.Part) -> list[str]:
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
            tokens += ["hfromname_" + w for w in (tokenish(w, 30) for w in _display_name_words(value)) if w]
    for received in msg.get_all("Received")[:8]:
        # Header text is ASCII (other bytes read as U+FFFD) and the host is lower-cased anyway: lower-casing
        # first finds the same hosts as a case-insensitive search, several times faster; two are kept.
        for found in itertools.islice(_HOST.finditer(received.lower()), 2):
            add("hrcvd", found.group(1))
    for name, prefix in (("X-Mailer", "hmailer"), ("User-Agent", "hmailer")):
        value = decode_header(msg.get(name))
        tokens += [f"{prefix}_{w}" for w in (tokenish(w, 30) for w in value.split()[:4]) if w]
    add("hmsgid", _domain(msg.get("Message-ID") or ""))
    add("hctype", msg.content_type)
    priority = (msg.get("X-Priority") or "").split()
    if priority:
        add("hprio", priority[0])
    return tokens


def _walk(msg: mime.Part, opts: ExtractOptions):
    """``(part, is_message)`` for the leaf parts of ``msg`` and the messages inside ``message/rfc822`` parts,
    iteratively, within the part and depth caps."""
    stack = [(msg, 0)]
    seen = 0
    while stack and seen < opts.max_parts:
        part, depth = stack.pop()
        seen += 1
        if part.children is not None:
            if depth < opts.max_depth:
                children = part.children[: opts.max_parts]
                if part.maintype == "message" and children:
                    yield children[0], True
                stack.extend((p, depth + 1) for p in reversed(children))
            continue
        yield part, False


@dataclass
class _Budget:
    """What is left of the per-message caps: visible characters, and HTML markup to scan."""

    chars: int
    markup: int
    images: int = 0


def _part_text(part: mime.Part, opts: ExtractOptions, signals: list[str], budget: _Budget) -> str:
    ctype = part.content_type
    maintype = part.maintype
    filename = part.get_filename()
    disposition = (part.get("Content-Disposition") or "").lower()
    if maintype in ("multipart", "message"):  # a container the parser could not split (no boundary): read as text
        maintype, ctype = "text", "text/plain"
    elif maintype != "text" or "attachment" in disposition or filename:
        signals.append("attach_" + tokenish(ctype))
        if filename:
            filename = decode_header(filename)
            signals.append("attachname_" + tokenish(filename, 40))
            if "." in filename:
                signals.append("attachext_" + tokenish(filename.rsplit(".", 1)[-1], 10))
        if maintype != "text":
            budget.images += maintype == "image"
            return ""
    data = part.payload()
    charset = part.get_content_charset()
    # At most 4 bytes a character: decoding more than that could only produce text we then cut.
    text = _decode_bytes(data[: 4 * max(budget.markup, budget.chars)], charset)
    if charset:
        signals.append("charset_" + tokenish(charset, 20))
    if ctype == "text/html" or (ctype == "text/plain" and _LOOKS_HTML.search(text, 0, 5000)):
        markup = text[: budget.markup]
        budget.markup -= len(markup)
        text, html_signals = html_to_text(markup)
        signals += html_signals
    text = text[: budget.chars]
    budget.chars -= len(text)
    return text


def bound_message(
    raw: bytes,
    body_limit: int = 12 * _DEFAULTS["max_chars"],
    max_boundaries: int = 4 * _DEFAULTS["max_parts"],
    max_containers: int = 4 * _DEFAULTS["max_depth"],
) -> bytes:
    """``raw`` cut where parsing and reading it would take long: an endless header block is ended
    after 256 KiB (the rest read as body), a single-part body after ``body_limit`` bytes, and a multipart
    message after ``max_boundaries`` ``--`` lines (only ``max_parts`` parts are visited anyway),
    ``max_containers`` nested multipart or message parts, or 250,000 lines (a 10 MB base64
    attachment has 130,000). The cuts also define which text a message gives, so they stay although
    :mod:`spamclf.mail.mime` needs fewer of them than the standard library's parser did."""
    end = _header_end(raw)
    if end < 0 and len(raw) > _MAX_HEADER_BYTES:
        cut = max(raw.rfind(b"\n", 0, _MAX_HEADER_BYTES), raw.rfind(b"\r", 0, _MAX_HEADER_BYTES))
        cut = cut + 1 if cut >= 0 else _MAX_HEADER_BYTES
        return raw[:cut] + b"\n\n" + raw[cut:]
    header = raw[:end] if end >= 0 else raw
    if not _CONTAINER_TYPE.search(header.lower()):
        # One part: text past this many bytes would be cut anyway (base64 of 4-byte characters, HTML budget).
        return raw[: len(header) + body_limit]
    if max(raw.count(b"\n"), raw.count(b"\r")) > _MAX_MULTIPART_LINES:
        for found in itertools.islice(_LINE_BREAK.finditer(raw), _MAX_MULTIPART_LINES - 1, _MAX_MULTIPART_LINES):
            raw = raw[: found.end()]
    # Parsing time grows with lines times nesting depth: past this many multipart or message
    # containers (max_depth levels are visited anyway), the rest is not read.
    for found in itertools.islice(_CONTAINER_TYPE.finditer(raw.lower()), max_containers, max_containers + 1):
        raw = raw[: found.start()]
    pos = max(end, 0)
    if raw.count(b"\n--", pos) + raw.count(b"\r--", pos) < max_boundaries:  # the loop below would cut nothing
        return raw
    for _ in range(max_boundaries):
        found = _BOUNDARY_LINE.search(raw, pos)
        if not found:
            return raw
        pos = found.end()
    return raw[:pos]


def _header_end(raw: bytes) -> int:
    """Where the first of ``_HEADER_ENDS`` in the first 256 KiB ends, or -1. A ``bytes.find`` for each,
    bounded by the best match so far, is many times faster than a regex search for all three."""
    start = end = -1
    for pair in _HEADER_ENDS:
        limit = _MAX_HEADER_BYTES if start < 0 else start - 1 + len(pair)
        at = raw.find(pair, 0, min(limit, _MAX_HEADER_BYTES))
        if at >= 0:
            start, end = at, at + len(pair)
    return end


def _plain(raw: bytes, opts: ExtractOptions) -> str:
    """The bytes as text, for input that is not e-mail at all."""
    text = normalize(_decode_bytes(raw[: 4 * opts.max_chars], None)[: opts.max_chars])
    return " ".join(text.split())


def extract(raw: bytes, opts: ExtractOptions = ExtractOptions(), *, tidy: bool = True) -> str:
    """The text a classifier sees for one raw message. Never raises on message content.

    ``tidy``: runs of whitespace become one space. Scoring, which only tokenises the text, passes
    False: the tokens are the same (no token holds whitespace), and collapsing was a twelfth of
    extracting and tokenising a message.

    Work is bounded whatever the input: ``max_bytes`` read, ``max_parts`` parts and
    ``max_depth`` levels visited, ``max_chars`` of text kept and twice that of HTML scanned,
    and the pathological structures that slow Python's parser are cut first (:func:`bound_message`).
    """
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise TypeError("extract() takes the raw message as bytes")
    raw = bound_message(bytes(raw[: opts.max_bytes]), 12 * opts.max_chars, 4 * max(opts.max_parts, 16), 4 * max(opts.max_depth, 4))
    try:
        msg = mime.parse(raw, opts.max_depth)
    except Exception:  # not parseable as mail at all (a boundary parameter the stdlib cannot decode): the bytes as text
        return _plain(raw, opts)
    pieces: list[str] = []
    signals: list[str] = []
    budget = _Budget(chars=opts.max_chars, markup=_MAX_MARKUP_FACTOR * opts.max_chars)
    try:
        pieces.append(decode_header(msg.get("Subject")))
        if opts.headers:
            signals += _header_tokens(msg)
        for part, is_message in _walk(msg, opts):
            if is_message:  # a forwarded or bounced message: its subject is text too
                pieces.append(decode_header(part.get("Subject")))
                continue
            pieces.append(_part_text(part, opts, signals, budget))
            if budget.chars <= 0:
                break
    except Exception:  # a defect email's parser tolerated but we tripped on: keep what we have
        signals.append("extracterror")
    text = normalize(" ".join(p for p in pieces if p))[: opts.max_chars]
    if opts.headers:
        signals += ["urldom_" + tokenish(d) for d in _url_hosts(text)]
        if budget.images and len(text.split()) < 10:
            signals.append("imageonly")
    if tidy:
        text = " ".join(text.split())  # whitespace runs to one space: split() has the same notion of whitespace as \s
    # Structure tokens (headers, HTML, attachments) are one switch: off gives the article's plain text.
    return (" ".join(signals) + "\n" + text) if signals and opts.headers else text


def extract_texts(messages: list[str | bytes], options: ExtractOptions, features=None, tidy: bool = True) -> list[str]:
    """The extracted text of raw messages (bytes); already extracted texts (str) pass as they are.

    ``tidy=False``: whitespace left as extraction found it, for texts that are only tokenised (see ``extract``)."""
    return [m if isinstance(m, str) else extract(m, options, tidy=tidy) for m in messages]
