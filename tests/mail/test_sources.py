"""Round trips for every input format, on the real messages of data/sample.

Each container is written with a real writer (Python's mailbox module, csv, json, pyarrow,
gzip/bz2/lzma) and read back through spamclf.mail.sources: the same messages, the same bytes,
in the same order, with readable item paths.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import json
import lzma
import mailbox
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from spamclf.cli import main
from spamclf.mail.labelled import load_labelled, message_digest
from spamclf.errors import DataError
from spamclf.mail.extract import ExtractOptions
from spamclf.mail.sources import LabelledSource, SkipLog, detect_format, iter_inputs, iter_labelled

MAX = 10_000_000


def sample_messages(sample: Path, label: str) -> list[bytes]:
    return [p.read_bytes() for p in sorted((sample / label).iterdir())]


@pytest.fixture(scope="module")
def spam(sample) -> list[bytes]:
    return sample_messages(sample, "spam")


@pytest.fixture(scope="module")
def ham(sample) -> list[bytes]:
    return sample_messages(sample, "ham")


def write_mbox(path: Path, messages: list[bytes]) -> Path:
    box = mailbox.mbox(str(path))
    for raw in messages:
        box.add(raw)
    box.flush()
    box.close()
    return path


def read_all(src) -> list:
    return list(iter_inputs([src], MAX))


def same_messages(items, messages: list[bytes]) -> None:
    assert [i.error for i in items] == [None] * len(messages)
    # Python's mbox writer quotes body lines starting "From "; every other message is byte-identical.
    exact = [(i.raw, m) for i, m in zip(items, messages) if b"\nFrom " not in m]
    assert len(exact) > 0.9 * len(messages)
    assert all(message_digest(a) == message_digest(b) for a, b in exact)


def test_mbox_round_trip(tmp_path, spam):
    box = write_mbox(tmp_path / "spam.mbox", spam)
    items = read_all(box)
    assert len(items) == len(spam)
    assert [i.path for i in items[:2]] == [f"{box}#1", f"{box}#2"]
    assert items[-1].path == f"{box}#{len(spam)}"
    same_messages(items, spam)
    assert detect_format(box) == "mbox"


def test_mbox_without_suffix_is_found_by_content(tmp_path, ham):
    box = write_mbox(tmp_path / "inbox", ham[:5])
    assert [i.path for i in read_all(box)] == [f"{box}#{n}" for n in range(1, 6)]


def test_single_message_file_keeps_plain_path_and_bytes(sample):
    # SpamAssassin files start with an mbox envelope line: one message, not a one-message mailbox.
    path = sorted((sample / "spam").iterdir())[0]
    (item,) = read_all(path)
    assert item.path == str(path) and item.raw == path.read_bytes()


def test_mbox_with_content_length_keeps_unquoted_from_lines(tmp_path, ham):
    # mboxcl2: bodies are not quoted, so a body line "From x Mon Jan  1 ..." must not split the message.
    body = b"Forwarded:\nFrom someone@example.com Mon Jan  1 10:00:00 2001\nhello\n"
    raws = []
    with open(tmp_path / "cl.mbox", "wb") as fh:
        for n in range(3):
            headers = b"From: a@example.com\nSubject: cl %d\nContent-Length: %d\n\n" % (n, len(body))
            raws.append(headers + body)
            fh.write(b"From a@example.com Mon Jan  1 10:00:00 2001\n" + headers + body + b"\n")
    items = read_all(tmp_path / "cl.mbox")
    assert len(items) == 3
    assert [i.raw.split(b"\n", 1)[1] for i in items] == raws


def test_maildir_round_trip_skips_tmp(tmp_path, ham):
    box = mailbox.Maildir(str(tmp_path / "Maildir"))
    for raw in ham[:10]:
        box.add(raw)
    sub = box.add_folder("Archive")  # Maildir++ subfolder: ".Archive"
    for raw in ham[10:13]:
        sub.add(raw)
    (tmp_path / "Maildir" / "tmp" / "123.delivering").write_bytes(ham[20])
    skips = SkipLog()
    items = list(iter_inputs([tmp_path / "Maildir"], MAX, skips))
    assert len(items) == 13 and all(i.error is None for i in items)
    assert sorted(message_digest(i.raw) for i in items) == sorted(message_digest(m) for m in ham[:13])
    assert any("Maildir tmp/" in r for r in skips.counts())
    assert detect_format(tmp_path / "Maildir") == "maildir"


def test_mh_round_trip_in_numeric_order(tmp_path, spam):
    box = mailbox.MH(str(tmp_path / "mh"))
    for raw in spam[:12]:
        box.add(raw)
    box.flush()
    (tmp_path / "mh" / ",3").write_bytes(b"deleted")
    skips = SkipLog()
    items = list(iter_inputs([tmp_path / "mh"], MAX, skips))
    # 1, 2, ... 10, 11, 12 in numeric order, not 1, 10, 11, 12, 2, ...
    assert [Path(i.path).name for i in items] == [str(n) for n in range(1, 13)]
    assert [i.raw for i in items] == spam[:12]
    assert skips.counts().get("deleted MH message") == 1
    assert skips.counts().get("hidden file") == 1  # .mh_sequences


@pytest.mark.parametrize("opener,suffix", [(gzip.open, ".gz"), (bz2.open, ".bz2"), (lzma.open, ".xz")])
def test_compressed_mbox_and_message(tmp_path, spam, opener, suffix):
    plain = write_mbox(tmp_path / "spam.mbox", spam[:20])
    packed = tmp_path / ("spam.mbox" + suffix)
    with opener(packed, "wb") as fh:
        fh.write(plain.read_bytes())
    items = read_all(packed)
    assert [i.path for i in items] == [f"{packed}#{n}" for n in range(1, 21)]
    same_messages(items, spam[:20])
    one = tmp_path / ("one.eml" + suffix)
    with opener(one, "wb") as fh:
        fh.write(spam[0])
    assert [(i.path, i.raw) for i in read_all(one)] == [(str(one), spam[0])]


def test_corrupt_compressed_file_is_scored_and_reported(tmp_path, spam):
    packed = tmp_path / "box.mbox.gz"
    with gzip.open(packed, "wb") as fh:
        fh.write(write_mbox(tmp_path / "b.mbox", spam[:30]).read_bytes())
    cut = tmp_path / "cut.mbox.gz"
    cut.write_bytes(packed.read_bytes()[: packed.stat().st_size // 2])
    skips = SkipLog()
    items = list(iter_inputs([cut], MAX, skips))
    assert 0 < len(items) < 30 and all(i.error is None for i in items)
    assert any(r.startswith("corrupt gzip data") for r in skips.counts())
    fake = tmp_path / "fake.gz"  # gzip magic, garbage after: still a readable file, scored on its bytes
    fake.write_bytes(b"\x1f\x8b" + b"not really gzip")
    assert [i.raw for i in iter_inputs([fake], MAX)] == [fake.read_bytes()]


@pytest.mark.parametrize("kind, opener", [("gzip", gzip.open), ("xz", lzma.open)])
def test_truncated_small_archive_gives_the_messages_before_the_cut_and_says_so(tmp_path, spam, kind, opener):
    # Smaller than one read of the decompressed stream: its messages used to be dropped with the
    # failing read, and the archive's own bytes scored as one message, with nothing logged.
    mbox = write_mbox(tmp_path / "b.mbox", spam[:3]).read_bytes()
    packed = tmp_path / "box.mbox.packed"
    with opener(packed, "wb") as fh:
        fh.write(mbox)
    cut = tmp_path / "cut.mbox.packed"
    cut.write_bytes(packed.read_bytes()[: packed.stat().st_size * 3 // 4])
    skips = SkipLog()
    items = list(iter_inputs([cut], MAX, skips))
    assert len(mbox) < 1 << 16 and items
    assert all(i.path.startswith(f"{cut}#") and i.error is None for i in items)
    assert items[0].raw == spam[0]  # the first message is whole
    assert [e["reason"].split(" after ")[0] for e in skips.skipped] == [f"corrupt {kind} data"]


def write_tables(folder: Path, spam: list[bytes], ham: list[bytes]) -> dict[str, Path]:
    rows = [(m.decode("latin-1"), "spam") for m in spam] + [(m.decode("latin-1"), "ham") for m in ham]
    paths = {}
    for name, delim in (("mail.csv", ","), ("mail.tsv", "\t")):
        with open(folder / name, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, delimiter=delim)
            writer.writerow(["id", "Text", "label"])
            writer.writerows((n, text, label) for n, (text, label) in enumerate(rows))
        paths[name] = folder / name
    with open(folder / "mail.jsonl", "w", encoding="utf-8") as fh:
        for text, label in rows:
            fh.write(json.dumps({"message": text, "class": label}) + "\n")
    paths["mail.jsonl"] = folder / "mail.jsonl"
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"text": [t for t, _ in rows], "is_spam": [lab == "spam" for _, lab in rows]})
    pq.write_table(table, folder / "mail.parquet", row_group_size=50)
    paths["mail.parquet"] = folder / "mail.parquet"
    with gzip.open(folder / "mail.csv.gz", "wb") as fh:
        fh.write(paths["mail.csv"].read_bytes())
    paths["mail.csv.gz"] = folder / "mail.csv.gz"
    return paths


@pytest.mark.parametrize("name", ["mail.csv", "mail.tsv", "mail.jsonl", "mail.parquet", "mail.csv.gz"])
def test_tables_round_trip_with_labels(tmp_path, spam, ham, name):
    path = write_tables(tmp_path, spam[:15], ham[:25])[name]
    items = list(iter_labelled([path], MAX))
    assert [i.label for i in items] == [1] * 15 + [0] * 25
    assert items[0].path == f"{path}#row=1" and items[-1].path == f"{path}#row=40"
    assert [i.raw.decode("utf-8") for i in items] == [m.decode("latin-1") for m in spam[:15] + ham[:25]]
    # Unlabelled, for predict: the same rows, no labels.
    assert [(i.path, i.label) for i in read_all(path)] == [(i.path, None) for i in items]


def test_table_label_errors_are_clear(tmp_path, spam):
    nolabel = tmp_path / "nolabel.csv"
    nolabel.write_text("text\nhello\n")
    with pytest.raises(DataError, match="label"):
        list(iter_labelled([nolabel], MAX))
    # ...but the file is fine given as --spam, or to predict.
    assert [i.label for i in iter_labelled([LabelledSource(str(nolabel), 1)], MAX)] == [1]
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nhello,maybe\n")
    with pytest.raises(DataError, match=r"bad.csv#row=1: label 'maybe' is neither spam nor ham"):
        list(iter_labelled([bad], MAX))
    notext = tmp_path / "notext.csv"
    notext.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="text column"):
        list(iter_labelled([notext], MAX))
    (item,) = read_all(notext)  # predict: not a table we can read, still a readable file with a score
    assert item.path == str(notext) and item.raw == b"a,b\n1,2\n"


def test_unlabelled_mailbox_as_data_is_a_clear_error(tmp_path, spam):
    box = write_mbox(tmp_path / "box.mbox", spam[:3])
    with pytest.raises(DataError, match="--spam/--ham"):
        list(iter_labelled([box], MAX))


def test_spam_and_ham_options_label_any_format(tmp_path, spam, ham):
    spam_box = write_mbox(tmp_path / "spam.mbox", spam)
    with gzip.open(tmp_path / "ham.mbox.gz", "wb") as fh:
        fh.write(write_mbox(tmp_path / "ham.mbox", ham).read_bytes())
    data = load_labelled(
        [LabelledSource(str(spam_box), 1), LabelledSource(str(tmp_path / "ham.mbox.gz"), 0)], ExtractOptions(), progress=False
    )
    assert data.counts() == {"ham": len(ham), "spam": len(spam)}


def test_cli_preprocess_with_spam_and_ham_mailboxes(tmp_path, spam, ham):
    write_mbox(tmp_path / "spam.mbox", spam)
    box = mailbox.Maildir(str(tmp_path / "hamdir"))
    for raw in ham:
        box.add(raw)
    result = CliRunner().invoke(
        main,
        ["preprocess", "--spam", str(tmp_path / "spam.mbox"), "--ham", str(tmp_path / "hamdir"), "--out", str(tmp_path / "out"), "-q"],
    )
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert stats["per_label"] == {"ham": len(ham), "spam": len(spam)}
    assert CliRunner().invoke(main, ["preprocess", "--out", str(tmp_path / "x")]).exit_code == 2


def test_predict_gives_one_row_per_message_in_every_format(tmp_path, sample, spam, ham, smoke_models):
    folder = tmp_path / "mixed"
    folder.mkdir()
    write_mbox(folder / "a.mbox", spam[:7])
    with lzma.open(folder / "b.mbox.xz", "wb") as fh:
        fh.write(write_mbox(tmp_path / "b.mbox", ham[:6]).read_bytes())
    box = mailbox.Maildir(str(folder / "maildir"))
    for raw in ham[6:10]:
        box.add(raw)
    mh = mailbox.MH(str(folder / "mh"))
    for raw in spam[7:10]:
        mh.add(raw)
    write_tables(folder, spam[10:12], ham[10:12])  # 4 rows in each of 5 tables
    (folder / "plain.eml").write_bytes(ham[20])
    (folder / ".hidden").write_bytes(ham[21])
    (folder / "backup.eml~").write_bytes(ham[22])
    expected = 7 + 6 + 4 + 3 + 5 * 4 + 1
    result = CliRunner().invoke(main, ["predict", "--models", str(smoke_models), "--format", "jsonl", str(folder)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == expected
    assert all(r["error"] is None and 0.0 <= r["score"] <= 1.0 for r in rows)
    assert len({r["path"] for r in rows}) == expected
    assert f"{expected} scored, 0 failed" in result.stderr
    assert "skipped" in result.stderr  # hidden, backup and .mh_sequences files are counted
    again = CliRunner().invoke(main, ["predict", "--models", str(smoke_models), "--format", "jsonl", str(folder)])
    assert again.stdout == result.stdout  # stable order, same scores


def test_one_labelled_message_on_stdin(tmp_path, spam, ham):
    write_mbox(tmp_path / "ham.mbox", ham[:30])
    write_mbox(tmp_path / "spam.mbox", spam[1:30])
    result = CliRunner().invoke(
        main,
        ["preprocess", "--spam", "-", "--spam", str(tmp_path / "spam.mbox"), "--ham", str(tmp_path / "ham.mbox"), "--out", str(tmp_path / "o"), "-q"],
        input=spam[0],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["per_label"] == {"ham": 30, "spam": 30}
    paths = [json.loads(line)["path"] for name in ("train", "test") for line in (tmp_path / "o" / f"{name}.jsonl").read_text().splitlines()[1:]]
    assert "-" in paths


@pytest.mark.parametrize("size", [0, 1, 65535, 65536, 65537, 200_001])
@pytest.mark.parametrize("limit", [0, 1, 65536, 100_000, 10_000_000])
def test_capped_reads_equal_a_plain_read(tmp_path, size, limit):
    import io

    from spamclf.mail.sources import read_capped

    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    path = tmp_path / "m.gz"
    path.write_bytes(gzip.compress(data))
    streams = [io.BytesIO(data), io.BufferedReader(io.BytesIO(data), 4096), gzip.open(path, "rb")]
    for stream in streams:
        assert read_capped(stream, limit) == data[:limit]
        assert stream.read() == data[limit:]  # nothing read past the cap


_MBOX_PIECES = [
    b"From a@b Mon Jan  1 00:00:00 2001\n",
    b"From x\n",
    b"From a@b Mon Jan  1 00:00:00 2001\r\n",
    b"Content-Length: 3\n",
    b"content-length: 12 \r\n",
    b"Content-Length: 9999\n",
    b"Subject: s\n",
    b"\n",
    b"\r\n",
    b"\r",
    b"body line\n",
    b">From a@b Mon Jan  1 00:00:00 2001\n",
    b"x" * 70,
]


def _mbox_messages(raw: bytes, max_bytes: int) -> list:
    import io

    from spamclf.mail.mailboxes import iter_mbox

    return [(m.raw, m.truncated, m.separator) for m in iter_mbox(io.BufferedReader(io.BytesIO(raw), 64), max_bytes)]


def line_by_line_mbox(raw: bytes, max_bytes: int) -> list:
    """The messages as the mbox reader cut them when it read one line (of at most 64 KiB) at a time."""
    from spamclf.mail.mailboxes import is_from_line

    content_length = re.compile(rb"(?i)content-length:[ \t]*(\d{1,12})[ \t]*\r?$")
    pos, out, blank = 0, [], (b"\n", b"\r\n")

    def readline() -> bytes:
        nonlocal pos
        end = raw.find(b"\n", pos, pos + 65536)
        start, pos = pos, min(len(raw), pos + 65536) if end < 0 else end + 1
        return raw[start:pos]

    def honest_body(length: int):  # Content-Length: the body, if the next envelope or the end follows it
        nonlocal pos
        start, body = pos, raw[pos : pos + length]
        pos += len(body)
        following = readline()
        if (following == b"" and len(body) == length) or is_from_line(following):
            return body, following
        if following in blank:
            after = readline()
            if after == b"" or is_from_line(after):
                return body, after
        pos = start
        return None

    def message(lines: list[bytes], strip: bool) -> tuple:
        whole = b"".join(lines)
        if strip and len(whole) <= max_bytes and len(lines) > 1 and lines[-1] in blank:
            return whole[: -len(lines[-1])], 0, lines[-1]
        return whole[:max_bytes], max(0, len(whole) - max_bytes), b""

    envelope = readline()
    while envelope:
        lines, length, at_line_start = [envelope], None, envelope.endswith(b"\n")
        line = readline()
        while line and not (at_line_start and (is_from_line(line) or line in blank)):  # the headers
            lines.append(line)
            match = at_line_start and line.endswith(b"\n") and content_length.match(line.rstrip(b"\n"))
            length = int(match.group(1)) if match else length
            at_line_start = line.endswith(b"\n")
            line = readline()
        if not line:
            return out + [message(lines, False)]
        if is_from_line(line):
            out.append(message(lines, True))
            envelope = line
            continue
        lines.append(line)
        found = honest_body(length) if length is not None and length <= max_bytes else None
        if found:
            out.append(message(lines + [found[0]], False))
            envelope = found[1]
            continue
        line, at_line_start = readline(), True
        while line and not (at_line_start and is_from_line(line)):  # the body
            lines.append(line)
            at_line_start = line.endswith(b"\n")
            line = readline()
        out.append(message(lines, True))
        envelope = line
    return out


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    pieces=st.lists(st.one_of(st.sampled_from(_MBOX_PIECES), st.binary(max_size=30)), max_size=40),
    max_bytes=st.integers(1, 120),
    block=st.integers(1, 50),
)
@example(pieces=[b"\n", b"\n", b"body line\n"], max_bytes=36, block=1)  # cut just after a blank line
def test_reading_in_blocks_cuts_mbox_messages_as_reading_lines_did(monkeypatch, pieces, max_bytes, block):
    """Messages are scanned in blocks for the lines that matter: the same messages, cut and counted the same."""
    from spamclf.mail import mailboxes

    raw = b"From a@b Mon Jan  1 00:00:00 2001\n" + b"".join(pieces)
    with monkeypatch.context() as m:
        m.setattr(mailboxes, "_FIRST_BLOCK", block)
        m.setattr(mailboxes, "_BLOCK", 2 * block)
        assert _mbox_messages(raw, max_bytes) == line_by_line_mbox(raw, max_bytes)


def test_pushed_back_bytes_are_read_first_whatever_they_are():
    import io

    from spamclf.mail.mailboxes import _Lines

    lines = _Lines(io.BytesIO(b"tail\n"))
    lines.unread(b"abc\ndef\n")
    assert lines.readline() == b"abc\n"
    lines.unread(b"XYZ\n")  # not what was just read: put in front
    assert lines.readline() == b"XYZ\n"
    lines.unread(b"XYZ\n")  # what was just read: stepped back over
    assert lines.read(100) == b"XYZ\ndef\ntail\n"


@pytest.mark.parametrize("pad", [0, 65_517, 65_518, 70_000])
def test_reading_in_blocks_judges_long_lines_as_reading_lines_did(pad):
    # A Content-Length line counts only whole, in one piece of 65,536 bytes: 18 + 65,517 + 1 is the longest.
    envelope = b"From a@b Mon Jan  1 00:00:00 2001\n"
    body = envelope + b"unquoted\n"
    raw = envelope + b"X: " + b"x" * 300 + b"\nContent-Length: %d" % len(body) + b" " * pad + b"\n\n" + body
    raw += b"\n" + envelope + b"Subject: " + b"y" * 100_000 + envelope[:-1] + b" " * pad + b"\nbody\n"
    for max_bytes in (100, 10_000_000):
        expected = line_by_line_mbox(raw, max_bytes)
        assert len(expected) == (2 if pad <= 65_517 else 3)
        assert _mbox_messages(raw, max_bytes) == expected


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.lists(st.sampled_from(['"', '""', "a", "a" * 9, ",", "\t", "\r", "\n", "\r\n", " ", "é", "\x00"]), max_size=60).map("".join),
    delimiter=st.sampled_from([",", "\t"]),
    max_bytes=st.integers(1, 40),
    extra=st.integers(0, 30),
    chunk=st.integers(1, 9),
)
@example(body=',"a\n\tb,a\né\r\ta"é,\tb,\r bbaéa\r\n\t', delimiter=",", max_bytes=9, extra=6, chunk=7)  # CR | LF across chunks
def test_records_too_long_for_csv_reader_are_read_as_it_reads_them(monkeypatch, body, delimiter, max_bytes, extra, chunk):
    """A record over ``record_chars`` is read in chunks, cells cut at the cap: the rows are csv.reader's."""
    import io

    from spamclf.mail import table_files as tables

    text = f"label{delimiter}text\n" + body
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    next(reader)
    expected = [(n, tables._as_bytes((c + [""])[1], max_bytes), c[0][:max_bytes]) for n, c in enumerate(reader, 1) if c]
    with monkeypatch.context() as m:
        m.setattr(tables, "_TEXT_CHUNK", chunk)
        rows = tables.iter_delimited(io.BytesIO(text.encode()), delimiter, max_bytes, record_chars=11 + extra)
        assert [(r.number, r.raw, r.label[:max_bytes]) for r in rows] == expected


def test_parquet_without_pyarrow_is_an_error_row_or_one_line(tmp_path, spam, ham, smoke_models):
    # pyarrow is the 'parquet' extra: without it a Parquet input to predict gets its error row (the
    # other inputs are still scored), and as labelled data it is a one-line error; never a traceback.
    path = write_tables(tmp_path, spam[:3], ham[:3])["mail.parquet"]
    other = tmp_path / "one.eml"
    other.write_bytes(spam[0])
    need = "pip install 'spamclf[parquet]'"

    def run(args):
        code = f"import sys\nsys.modules['pyarrow'] = None  # as if not installed\nfrom spamclf.cli import main\nmain({args!r})\n"
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)

    proc = run(["predict", "--models", str(smoke_models), "--format", "jsonl", str(path), str(other)])
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert proc.returncode == 3 and [r["path"] for r in rows] == [str(path), str(other)]
    assert need in rows[0]["error"] and rows[1]["score"] is not None
    proc = run(["train", "--data", str(path), "--models", str(tmp_path / "m")])
    assert proc.returncode == 1 and proc.stderr.strip().splitlines()[-1].endswith(need), proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "m").exists()
