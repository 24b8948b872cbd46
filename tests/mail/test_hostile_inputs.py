"""Hostile input: whatever the bytes or the file system hold, every input gets its one row, no traceback.

The inputs are generated here (not committed binaries). Time bounds are measured in
benchmarks/hostile_inputs.py, not asserted: each case below is sized so that unbounded
(quadratic or recursive) work would make this file take minutes instead of seconds.
"""

from __future__ import annotations

import base64
import csv
import json
import os
import subprocess
import sys
import zlib

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spamclf.mail import mailboxes
from spamclf.cli import main
from spamclf.mail.extract import ExtractOptions, bound_message, extract
from spamclf.mail.sources import SkipLog, iter_inputs, iter_labelled


def multipart(n: int, ctype: bytes = b"text/plain") -> bytes:
    parts = b"".join(b"--b\r\nContent-Type: %s\r\n\r\nhello %d\r\n" % (ctype, i) for i in range(n))
    return b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + parts + b"--b--\r\n"


def nested(depth: int) -> bytes:
    head = b"".join(b"Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n" % (i, i) for i in range(depth))
    return head + b"Content-Type: text/plain\n\ndeep inside\n"


HOSTILE = {
    "empty": b"",
    "binary": bytes(range(256)) * 4000,
    "nul_bytes": b"Subject: nul\n\n" + b"\x00" * 1_000_000,
    "truncated_multipart": multipart(5)[:-40],
    "boundaryless_multipart": b"Content-Type: multipart/mixed\n\n--x\nContent-Type: text/plain\n\nhidden words\n",
    "thousands_of_parts": multipart(50_000),
    "thousands_of_html_parts": multipart(5_000, b"text/html"),
    "deep_nesting": nested(3_000),
    "deep_rfc822": b"Content-Type: message/rfc822\n\n" * 3_000 + b"Subject: inner\n\nbody",
    "invalid_base64": b"Content-Transfer-Encoding: base64\n\n" + b"!!!!====abc\n" * 100_000,
    "invalid_qp": b"Content-Transfer-Encoding: quoted-printable\n\n" + b"=ZZ=\n=" * 100_000,
    "unknown_charset": b"Content-Type: text/plain; charset=x-klingon\n\nQapla' \xff\xfe cheap",
    "lying_charset": b"Content-Type: text/plain; charset=utf-8\n\ncaf\xe9 cr\xe8me \x93quoted\x94",
    "codec_not_text": b"Content-Type: text/plain; charset=zlib\n\nnot compressed",
    "slow_codec": b"Content-Type: text/plain; charset=punycode\n\n" + b"a-" * 200_000 + b"\xff",
    "utf16_body": b"Content-Type: text/plain; charset=utf-16\n\n" + "free money now".encode("utf-16"),
    "utf16_undeclared": b"Subject: x\n\n" + "free money now".encode("utf-16-le"),
    "huge_single_line": b"Subject: line\n\n" + b"word " * 2_000_000,
    "megabyte_header": b"Subject: " + b"a" * 1_000_000 + b"\n\nbody",
    "megabyte_encoded_words": b"Subject: " + b"=?utf-8?b?aGVsbG8=?= " * 50_000 + b"\n\nbody",
    "endless_headers": b"".join(b"X-H%d: v\n" % i for i in range(200_000)),
    "deep_html": b"Content-Type: text/html\n\n" + b"<div><span>" * 300_000 + b"deep",
    "unclosed_comments": b"Content-Type: text/html\n\n" + b"<!--" * 500_000,
    "html_junk": b"Content-Type: text/html\n\n" + b"<<!</<?<![CDATA[&#" * 100_000,
    "cr_only": b"Subject: cr\rFrom: a@b\r\rbody line\r" * 200_000,
    "cr_only_multipart": b"Content-Type: multipart/mixed; boundary=b\r\r--b\r\r" + b"w\r" * 2_000_000,
    "rfc2231_garbage": b"Content-Type: text/plain; charset*=utf-8''%ff%fe; name*0=a; name*1=b\n\nx",
    "bad_encoded_word": b"Subject: =?x-unknown?q?=ff=fe?= =?utf-8?b?!!!?=\n\nbody",
    "boundary_lookalikes": b"Content-Type: multipart/mixed; boundary=a\n\n" + b"--a" * 1_000_000,
    "boundary_lookalike_lines": b"Content-Type: multipart/mixed; boundary=a\n\n" + b"--ab\n" * 500_000,
    "envelope_lines": b"Subject: s\nFrom x\n" * 20_000 + b"From y\n\nbody",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_extract_survives(name):
    text = extract(HOSTILE[name])
    assert isinstance(text, str)
    assert len(text) <= ExtractOptions().max_chars + 10_000  # signals line plus capped text


def test_obfuscated_words_still_read():
    assert "hidden words" in extract(HOSTILE["boundaryless_multipart"])
    assert "free money now" in extract(HOSTILE["utf16_body"])
    assert "free money now" in extract(HOSTILE["utf16_undeclared"])
    assert "café crème “quoted”" in extract(HOSTILE["lying_charset"])


def test_parser_bounds_cut_pathological_structure():
    many = multipart(50_000)
    assert len(bound_message(many)) < len(many) // 10
    endless = HOSTILE["endless_headers"]
    assert b"\n\n" in bound_message(endless)[: 300 * 1024]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4000))
def test_arbitrary_bytes_never_raise(raw):
    assert isinstance(extract(raw), str)


_FRAGMENTS = st.sampled_from(
    [
        b"Content-Type: multipart/mixed; boundary=x\n",
        b"Content-Type: message/rfc822\n",
        b"Content-Type: text/html; charset=utf-16\n",
        b"Content-Type: text/plain; charset=\"=?bad?=\"\n",
        b"Content-Transfer-Encoding: base64\n",
        b"Content-Transfer-Encoding: quoted-printable\n",
        b"Content-Disposition: attachment; filename*=utf-8''%ff\n",
        b"Subject: =?utf-8?q?=E2=80?=\n",
        b"\n",
        b"--x\n",
        b"--x--\n",
        b"<a href='http://x'>",
        b"<!--",
        b"=?",
        b"\r",
        b"\x00",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(_FRAGMENTS, st.binary(max_size=40)), max_size=60))
def test_mime_shaped_garbage_never_raises(pieces):
    assert isinstance(extract(b"".join(pieces)), str)


def test_every_hostile_file_gets_one_scored_row(tmp_path, smoke_models):
    folder = tmp_path / "hostile"
    folder.mkdir()
    for name, raw in HOSTILE.items():
        (folder / f"{name}.eml").write_bytes(raw)
    result = CliRunner().invoke(main, ["predict", "--models", str(smoke_models), "--format", "jsonl", str(folder)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(os.path.basename(r["path"]) for r in rows) == sorted(f"{n}.eml" for n in HOSTILE)
    assert all(r["error"] is None and 0.0 <= r["score"] <= 1.0 for r in rows)
    assert f"{len(HOSTILE)} scored, 0 failed" in result.stderr


def test_unreadable_inputs_get_error_rows_and_exit_3(tmp_path, sample, smoke_models):
    folder = tmp_path / "box"
    folder.mkdir()
    good = sorted((sample / "ham").iterdir())[0]
    (folder / "good.eml").write_bytes(good.read_bytes())
    (folder / "dangling").symlink_to(tmp_path / "nowhere")
    (folder / "loop_a").symlink_to(folder / "loop_b")
    (folder / "loop_b").symlink_to(folder / "loop_a")
    (folder / "dirlink").symlink_to(folder)  # a link to a folder is skipped and counted, never followed
    os.mkfifo(folder / "pipe")  # would block a reader forever: skipped and counted
    locked = folder / "locked.eml"
    locked.write_bytes(good.read_bytes())
    locked.chmod(0)
    can_read_locked = os.access(locked, os.R_OK)  # root reads anything
    skips = SkipLog()
    items = list(iter_inputs([folder], 10_000_000, skips))
    by_name = {os.path.basename(i.path): i for i in items}
    assert set(by_name) == {"dangling", "good.eml", "locked.eml", "loop_a", "loop_b"}
    assert by_name["good.eml"].error is None
    assert by_name["dangling"].error and by_name["loop_a"].error and by_name["loop_b"].error
    assert (by_name["locked.eml"].error is None) == can_read_locked
    assert set(skips.counts()) == {"link to a folder (not followed)", "not a regular file (device, pipe or socket)"}

    result = CliRunner().invoke(main, ["predict", "--models", str(smoke_models), "--format", "csv", str(folder), str(tmp_path / "missing.eml")])
    assert result.exit_code == 3
    failed = 3 + (0 if can_read_locked else 1) + 1
    assert f"{6 - failed} scored, {failed} failed" in result.stderr
    assert "Traceback" not in result.output
    assert len(result.stdout.splitlines()) == 1 + 6  # header + one row per input found


def spamclf(*args, timeout: float = 60) -> subprocess.CompletedProcess:
    """The real program in a subprocess, stdin closed: one that blocks on a pipe fails by timeout."""
    return subprocess.run(
        [sys.executable, "-m", "spamclf", *map(str, args)], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def test_a_named_pipe_or_device_gets_its_error_row_and_is_never_read(tmp_path, sample, smoke_models):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)  # no writer: opening it to read would block forever
    good = sorted((sample / "ham").iterdir())[0]
    result = spamclf("predict", "--models", smoke_models, "--format", "jsonl", fifo, "/dev/null", good)
    assert result.returncode == 3, result.stderr
    rows = {r["path"]: r for r in map(json.loads, result.stdout.splitlines())}
    assert list(rows) == [str(fifo), "/dev/null", str(good)]
    assert rows[str(fifo)]["error"] == rows["/dev/null"]["error"] == "not a regular file (device, pipe or socket)"
    assert rows[str(good)]["error"] is None
    assert "1 scored, 2 failed" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--data", "{fifo}", "--models", "{tmp}/m", "--config", "{config}"],
        ["evaluate", "--data", "/dev/null"],
        ["evaluate", "--data", "{fifo}"],
        ["evaluate", "--spam", "{fifo}", "--ham", "{sample}/ham"],
        ["preprocess", "--data", "/dev/zero", "--out", "{tmp}/out"],
    ],
)
def test_labelled_data_that_is_a_pipe_or_device_is_one_line(tmp_path, sample, smoke_models, smoke_config, args):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    args = [a.format(fifo=fifo, tmp=tmp_path, config=smoke_config, sample=sample) for a in args]
    if args[0] == "evaluate":
        args += ["--models", str(smoke_models)]
    result = spamclf(*args)
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("Error: ") and len(result.stderr.splitlines()) == 1, result.stderr
    assert "not a regular file or folder (device, pipe or socket)" in result.stderr


def test_message_larger_than_the_cap_is_truncated_and_scored(tmp_path):
    big = tmp_path / "big.eml"
    big.write_bytes(b"Subject: big\n\n" + base64.b64encode(os.urandom(300_000)))
    (item,) = iter_inputs([big], 100_000)
    assert item.truncated and len(item.raw) == 100_000


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(
    raw=st.one_of(
        st.binary(max_size=3000),
        st.lists(st.sampled_from([b"From a@b Mon Jan  1 00:00:00 2001\n", b"Content-Length: 5\n", b"\n", b"x\n", b"text,label\n", b'{"text": 1}\n', b'"', b"\x1f\x8b", b"PAR1", b"\r"]), max_size=40).map(b"".join),
    ),
    name=st.sampled_from(["m.eml", "box.mbox", "t.csv", "t.tsv", "t.jsonl", "t.parquet", "x.gz", "y.xz"]),
)
def test_any_file_content_gives_rows_never_a_traceback(tmp_path_factory, raw, name):
    path = tmp_path_factory.mktemp("any") / name
    path.write_bytes(raw)
    items = list(iter_inputs([path], 10_000_000, SkipLog()))
    assert all(i.error is None for i in items)
    assert items or name.endswith((".csv", ".tsv", ".jsonl", ".parquet", ".gz", ".xz"))  # an empty table has no rows
    assert all(isinstance(extract(i.raw), str) for i in items)


def test_a_message_of_100_mb_of_empty_lines_is_read_in_blocks_not_lines(tmp_path, monkeypatch):
    """100 MB of empty lines in one message (100 kB gzipped): read a line at a time, it took about
    0.46 s/MB. Now a message is scanned in blocks for the lines that end it; past the cap, at I/O speed."""
    envelope = b"From a@b Mon Jan  1 00:00:00 2001\n"
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)  # gzip, written without holding 100 MB
    packed = [packer.compress(envelope + b"Subject: huge\n\n")]
    packed += [packer.compress(b"\n" * (1 << 20)) for _ in range(100)]
    packed += [packer.compress(b"\n" + envelope + b"Subject: small\n\nhello\n"), packer.flush()]
    box = tmp_path / "box.mbox.gz"
    box.write_bytes(b"".join(packed))
    lines_read = 0
    readline = mailboxes._Lines.readline

    def counted(self):
        nonlocal lines_read
        lines_read += 1
        return readline(self)

    monkeypatch.setattr(mailboxes._Lines, "readline", counted)
    first, second = iter_inputs([box], 10_000_000)
    head = envelope + b"Subject: huge\n\n"
    assert first.path == f"{box}#1" and first.truncated and first.raw == head + b"\n" * (10_000_000 - len(head))
    assert second.path == f"{box}#2" and second.raw == envelope + b"Subject: small\n\nhello\n" and not second.truncated
    assert lines_read < 10  # the envelopes and the blank lines that end the headers: not one call per line


@pytest.mark.parametrize("name", ["t.csv", "t.tsv", "t.jsonl"])
def test_a_cell_of_45_million_characters_is_cut_and_every_row_is_read(tmp_path, smoke_models, name):
    """Past 40 MB (four times the cap), csv.reader refused the cell and the rest of the file was skipped,
    with exit status 0. Now the cell is cut at the cap, as in JSON Lines, and the rows after it are read."""
    big = "Subject: big\n\n" + "money " * 7_500_000
    rows = [("ham", "hello"), ("spam", big), ("ham", "after")]
    path = tmp_path / name
    with open(path, "w", newline="", encoding="utf-8") as fh:
        if name.endswith(".jsonl"):
            fh.writelines(json.dumps({"label": label, "text": text}) + "\n" for label, text in rows)
        else:
            csv.writer(fh, delimiter="\t" if name.endswith(".tsv") else ",").writerows([("label", "text"), *rows])
    skips = SkipLog()
    items = list(iter_labelled([path], 10_000_000, skips))
    assert [(i.path, i.label, i.truncated) for i in items] == [(f"{path}#row={n}", label, n == 2) for n, label in ((1, 0), (2, 1), (3, 0))]
    assert items[1].raw == big.encode()[:10_000_000] and items[2].raw == b"after"
    assert not skips.skipped
    result = CliRunner().invoke(main, ["predict", "--models", str(smoke_models), "--format", "jsonl", str(path)])
    assert result.exit_code == 0, result.output
    scored = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["path"] for r in scored] == [i.path for i in items] and all(r["error"] is None for r in scored)
    assert [r.get("truncated", False) for r in scored] == [False, True, False]
    assert "3 scored, 0 failed" in result.stderr and "skipped" not in result.stderr
