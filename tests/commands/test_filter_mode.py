"""Filter mode (``spamclf predict --models DIR -``) on real messages: bytes out = bytes in plus our headers,
forged headers renamed, line endings kept, bogofilter's exit codes, and mail never eaten on error."""

from __future__ import annotations

import email
import email.policy
import re
import shlex
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from spamclf.cli import main
from spamclf.commands.filter import FilterOptions, add_headers, filter_message
from spamclf.mail.header_block import header_end, line_ending
from spamclf.commands.predict import Classifier

ADDED = re.compile(rb"X-Spam-(?:Flag|Score|Status): [^\r\n]*\r?\n")
ADDED_CR = re.compile(rb"X-Spam-(?:Flag|Score|Status): [^\r\n]*\r")


def filter_cli(models, raw: bytes, *options: str):
    result = CliRunner().invoke(main, ["predict", "--models", str(models), *options, "-"], input=raw)
    return result.exit_code, result.stdout_bytes, result.stderr


def without_added(out: bytes) -> bytes:
    """The output with our three header lines taken out again."""
    stripped, n = ADDED.subn(b"", out)
    assert n == 3, out[:2000]
    return stripped


def headers_of(out: bytes):
    return email.message_from_bytes(out, policy=email.policy.compat32)


@pytest.fixture(scope="module")
def clf(smoke_models) -> Classifier:
    return Classifier.load(smoke_models)


@pytest.fixture(scope="module")
def verdicts(clf, sample) -> dict[str, tuple[float, str]]:
    """Row-mode scores and labels of every sample message: what filter mode must agree with."""
    return {row.path: (row.score, row.label) for row in clf.predict([sample])}


def pick(sample: Path, verdicts, folder: str, label: str, n: int = 3) -> list[Path]:
    return [p for p in sorted((sample / folder).iterdir()) if verdicts[str(p)][1] == label][:n]


def test_real_spam_and_ham_in_a_real_process(smoke_models, sample, verdicts):
    """What a mail server runs: a process, bytes on stdin and stdout."""
    for path, code, flag in [*[(p, 0, b"YES") for p in pick(sample, verdicts, "spam", "spam")], *[(p, 1, b"NO") for p in pick(sample, verdicts, "ham", "ham")]]:
        raw = path.read_bytes()
        proc = subprocess.run([sys.executable, "-m", "spamclf", "predict", "--models", str(smoke_models), "-"], input=raw, capture_output=True)
        assert proc.returncode == code, (path, proc.stderr)
        assert proc.stderr == b""
        assert without_added(proc.stdout) == raw  # every other byte as it was
        msg = headers_of(proc.stdout)
        assert msg["X-Spam-Flag"] == flag.decode()
        score = float(msg["X-Spam-Score"])
        assert score == pytest.approx(verdicts[str(path)][0], abs=1e-6)
        assert msg["X-Spam-Status"].startswith("Yes, score=" if code == 0 else "No, score=")
        assert re.search(r"threshold=0\.\d{6} model=[0-9a-f]{12}$", msg["X-Spam-Status"])


def test_headers_go_at_the_end_of_the_header_block(smoke_models, sample):
    path = sorted((sample / "ham").iterdir())[0]
    raw = path.read_bytes()
    assert raw.startswith(b"From ")  # an mbox envelope line, as procmail hands it over
    code, out, _ = filter_cli(smoke_models, raw)
    cut = raw.index(b"\n\n") + 1
    assert out.startswith(raw[:cut])
    assert out[cut:].startswith(b"X-Spam-Flag: ")
    assert out.endswith(raw[cut:])
    assert out[: out.index(b"\n\n")].count(b"\nX-Spam-") == 3


def test_every_sample_message_round_trips_and_agrees_with_row_mode(clf, sample, verdicts):
    for path in sorted(sample.glob("*/*")):
        raw = path.read_bytes()
        result = filter_message(clf, raw)
        assert without_added(result.output) == raw, path
        assert result.label == verdicts[str(path)][1]
        assert result.exit_code == {"spam": 0, "ham": 1}[result.label]


def test_crlf_message_gets_crlf_headers_and_keeps_every_byte(smoke_models, sample, verdicts):
    path = pick(sample, verdicts, "spam", "spam", 1)[0]
    raw = path.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    code, out, _ = filter_cli(smoke_models, raw)
    assert code == 0
    assert out.count(b"\n") == out.count(b"\r\n")  # no bare LF introduced
    assert without_added(out) == raw
    assert b"X-Spam-Flag: YES\r\nX-Spam-Score: " in out


def test_forged_headers_are_renamed_and_ours_are_the_only_ones(smoke_models, sample, verdicts):
    path = pick(sample, verdicts, "spam", "spam", 1)[0]
    original = path.read_bytes()
    envelope, rest = original.split(b"\n", 1)
    forged = b"X-Spam-Flag: NO\nx-spam-status: No, score=-10.0\n\ttests=ALL_TRUSTED\nX-Spam-Score: 0.000001\n"
    raw = envelope + b"\n" + forged + rest
    code, out, _ = filter_cli(smoke_models, raw)
    assert code == 0
    msg = headers_of(out)
    assert msg.get_all("X-Spam-Flag") == ["YES"]
    assert len(msg.get_all("X-Spam-Status")) == 1 and msg["X-Spam-Status"].startswith("Yes,")
    assert msg.get_all("X-Spam-Score") != ["0.000001"]
    # The forged ones are kept under another name, value and folding byte for byte.
    renamed = b"X-Forged-Spam-Flag: NO\nX-Forged-Spam-status: No, score=-10.0\n\ttests=ALL_TRUSTED\nX-Forged-Spam-Score: 0.000001\n"
    assert renamed in out
    assert without_added(out).replace(renamed, forged) == raw


def test_a_header_named_like_ours_but_not_under_the_prefix_is_kept(clf, sample):
    raw = b"From: a@example.com\nX-Spam: high\nX-Spamish-Flag: YES\nSubject: hi\n\nbody\n"
    out = filter_message(clf, raw).output
    assert without_added(out) == raw


def test_unsure_band_exits_2(smoke_models, sample, verdicts):
    path = pick(sample, verdicts, "ham", "ham", 1)[0]
    code, out, _ = filter_cli(smoke_models, path.read_bytes(), "--ham-cutoff", "0", "--spam-cutoff", "1")
    assert code == 2
    msg = headers_of(out)
    assert msg["X-Spam-Flag"] == "NO"
    assert msg["X-Spam-Status"].startswith("Unsure, score=") and "ham_cutoff=0.000000" in msg["X-Spam-Status"]


def test_exit_zero(smoke_models, sample, verdicts):
    ham = pick(sample, verdicts, "ham", "ham", 1)[0].read_bytes()
    assert filter_cli(smoke_models, ham)[0] == 1
    code, out, _ = filter_cli(smoke_models, ham, "--exit-zero")
    assert code == 0 and without_added(out) == ham


@pytest.mark.parametrize("option", [[], ["--exit-zero"]])
def test_a_broken_models_directory_passes_the_message_through_unchanged(smoke_models, sample, tmp_path, option):
    raw = sorted((sample / "spam").iterdir())[0].read_bytes()
    code, out, err = filter_cli(tmp_path / "no-such-models", raw, *option)
    assert code == 3
    assert out == raw
    assert err.strip().count("\n") == 0 and err.startswith("Error: models directory")


def test_a_tampered_bundle_in_a_real_process_passes_mail_through(smoke_models, sample, tmp_path):
    import shutil

    bad = tmp_path / "models"
    shutil.copytree(smoke_models, bad)
    (bad / "weights.npz").write_bytes(b"garbage")
    raw = sorted((sample / "ham").iterdir())[0].read_bytes()
    proc = subprocess.run([sys.executable, "-m", "spamclf", "predict", "--models", str(bad), "-"], input=raw, capture_output=True)
    assert proc.returncode == 3
    assert proc.stdout == raw
    assert proc.stderr.decode().startswith("Error: ") and b"Traceback" not in proc.stderr


def test_a_bad_cutoff_band_is_an_error_that_still_passes_mail(smoke_models, sample):
    raw = sorted((sample / "ham").iterdir())[0].read_bytes()
    code, out, err = filter_cli(smoke_models, raw, "--ham-cutoff", "0.9", "--spam-cutoff", "0.1")
    assert code == 3 and out == raw and "ham cutoff" in err


@pytest.mark.parametrize(
    "args, said",
    [
        (["--modles", "MODELS", "-"], "No such option '--modles'"),
        (["-"], "Missing option '--models'"),
        (["--models", "MODELS", "--threshold", "2", "-"], "Invalid value for '--threshold'"),
        (["--models", "MODELS", "--workers", "2", "-"], "need --engine ray"),
    ],
    ids=["mistyped-option", "no-models", "bad-value", "option-of-another-engine"],
)
def test_a_wrong_command_line_in_filter_mode_passes_the_message_and_exits_3(smoke_models, sample, args, said):
    # As bogofilter on an unknown option: an error, not Click's 2 (which means "unsure" here), and
    # the mail is delivered as it came.
    raw = sorted((sample / "spam").iterdir())[0].read_bytes()
    argv = [str(smoke_models) if a == "MODELS" else a for a in args]
    result = CliRunner().invoke(main, ["predict", *argv], input=raw)
    assert result.exit_code == 3 and result.stdout_bytes == raw
    assert result.stderr.startswith("Error: ") and said in result.stderr and result.stderr.count("\n") == 1


def test_a_wrong_command_line_in_a_real_filter_process(smoke_models, sample):
    raw = sorted((sample / "ham").iterdir())[0].read_bytes()
    proc = subprocess.run([sys.executable, "-m", "spamclf", "predict", "--modles", str(smoke_models), "-"], input=raw, capture_output=True)
    assert proc.returncode == 3 and proc.stdout == raw and b"--modles" in proc.stderr


def test_a_wrong_command_line_outside_filter_mode_is_a_usage_error(smoke_models, sample):
    raw = sorted((sample / "spam").iterdir())[0].read_bytes()
    for args in (["--modles", str(smoke_models), str(sample)], ["--models", str(smoke_models), "--format", "csv", "--bogus", "-"]):
        result = CliRunner().invoke(main, ["predict", *args], input=raw)
        assert result.exit_code == 2 and result.stdout_bytes == b"" and "Usage:" in result.stderr
    # typed at a terminal, with no message piped in, filter mode's mistake is a usage error too
    import os
    import pty

    leader, follower = pty.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "spamclf", "predict", "--modles", str(smoke_models), "-"], stdin=follower, capture_output=True, timeout=60)
    finally:
        os.close(leader)
        os.close(follower)
    assert proc.returncode == 2 and proc.stdout == b"" and b"Usage:" in proc.stderr


def test_header_prefix_names_our_headers_and_the_ones_renamed(smoke_models):
    raw = b"From: a@example.com\nX-Spam-Flag: YES\nX-Spamclf-Flag: NO\nSubject: cheap pills\n\nbuy now\n"
    code, out, _ = filter_cli(smoke_models, raw, "--header-prefix", "X-Spamclf")
    msg = headers_of(out)
    assert msg["X-Spam-Flag"] == "YES"  # someone else's (say an upstream SpamAssassin): kept
    assert msg["X-Forged-Spamclf-Flag"] == "NO"
    assert msg.get_all("X-Spamclf-Flag") in (["YES"], ["NO"]) and msg["X-Spamclf-Score"] and msg["X-Spamclf-Status"]


def test_only_max_bytes_are_scored_but_every_byte_passes(clf, sample):
    raw = sorted((sample / "ham").iterdir())[0].read_bytes()
    huge = raw + b"filler line\n" * 50_000
    small = Classifier(clf.bundle)
    small.options = replace(clf.options, max_bytes=len(raw))
    result = filter_message(small, huge)
    assert without_added(result.output) == huge
    assert result.score == pytest.approx(float(clf.score_messages([raw])[0]), abs=1e-6)


def test_format_with_dash_gives_a_row_not_a_filtered_message(smoke_models, sample):
    raw = sorted((sample / "spam").iterdir())[0].read_bytes()
    result = CliRunner().invoke(main, ["predict", "--models", str(smoke_models), "--format", "csv", "-"], input=raw)
    assert result.exit_code == 0, result.output
    assert b"X-Spam-Flag" not in result.stdout_bytes
    header, row = result.stdout.strip().splitlines()
    assert header == "path,score,label,error"
    path, score, label, error = row.split(",")
    assert path == "-" and label in ("spam", "ham") and 0.0 <= float(score) <= 1.0 and error == ""


@pytest.mark.parametrize(
    "raw, cut",
    [
        (b"", 0),
        (b"Subject: x", 10),
        (b"Subject: x\n", 11),
        (b"Subject: x\n\nbody", 11),
        (b"From a@b Mon\nSubject: x\n folded\n\nbody\n", 32),
        # Up to the first empty line every line is header, as procmail and maildrop read it.
        (b"not a header line\nSubject: x\n\n", 29),
        (b"Subject: x\nnot a header line\nX-Spam-Flag: NO\n\nbody\n", 45),
        (b"Bad Name: x\nX-Spam-Flag: NO\n\nbody\n", 28),
        (b" leading space\nX-Spam-Flag: NO\n\nbody\n", 31),
        (b"just some text\n", 15),
        (b"\nbody only\n", 0),
        (b"Subject: x\r\n\r\nbody\r\n", 12),
        (b"Subject: x\r\n\nbody\r\n", 12),
        (b"Subject: x\n\r\nbody\n", 11),
        (b"Subject: x\n \n\t\nX: y\n", 20),  # a line of blanks is not empty
        (b"Subject: x\rX: y\n\nbody\n", 16),  # a bare CR is no line end in a message with LF
        # CR only, no LF anywhere: CR-terminated lines
        (b"Subject: x\rX: y\r\rbody\r", 16),
        (b"\rbody\r", 0),
        (b"Subject: x\rX: y", 15),
    ],
)
def test_header_end(raw, cut):
    assert header_end(raw) == cut


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.sampled_from([b"\r", b"\n", b"\r\n", b"a", b":", b" "]), max_size=14).map(b"".join))
def test_header_end_is_the_first_empty_line_on_any_line_ends(raw):
    # The definition, as one regular expression: an empty line starts the message or follows a line
    # end (LF; with no LF anywhere, CR); a lone line-end CR at the message's end counts.
    definition = {b"\n": rb"(?<![^\n])\r?(?:\n|\Z)", b"\r": rb"(?<![^\r])\r"}
    found = re.search(definition[line_ending(raw)[-1:]], raw)
    assert header_end(raw) == (found.start() if found else len(raw))


def test_a_message_without_an_empty_line_is_all_header():
    # procmail and maildrop read all of it as header: ours go at its end, where they read them.
    out = add_headers(b"just some text\nX-Spam-Flag: NO\n", [("X-Spam-Flag", "YES")])
    assert out == b"just some text\nX-Forged-Spam-Flag: NO\nX-Spam-Flag: YES\n"


def test_a_message_that_starts_with_an_empty_line_gets_ours_as_its_header_block():
    out = add_headers(b"\nX-Spam-Flag: NO\nbody\n", [("X-Spam-Flag", "YES")])
    assert out == b"X-Spam-Flag: YES\n\nX-Spam-Flag: NO\nbody\n"  # the rest is body: not renamed, not read as header


FORGERIES = {
    "after-a-line-that-is-not-a-header": b"Subject: x\nnot a header line\nX-Spam-Flag: NO\nX-Spam-Score: 0.01\n\nbody\n",
    "after-a-malformed-field-name": b"Subject: x\nBad Name: y\nX-Spam-Flag: NO\nX-Spam-Score: 0.01\n\nbody\n",
    "first-line-starts-with-a-space": b" leading\nX-Spam-Flag: NO\nX-Spam-Score: 0.01\n\nbody\n",
    "after-a-bare-cr": b"Subject: x\rX-Spam-Flag: NO\nX-Spam-Score: 0.01\n\nbody\n",
    "folded-after-an-mbox-envelope": b"From a@b Mon\nnot header\nX-Spam-Flag:\n NO\nX-Spam-Score: 0.01\n\nbody\n",
}


@pytest.mark.parametrize("raw", FORGERIES.values(), ids=FORGERIES.keys())
def test_every_forgery_in_the_header_block_is_renamed_and_ours_end_it(raw):
    out = add_headers(raw, [("X-Spam-Flag", "YES"), ("X-Spam-Score", "0.9")])
    cut = raw.index(b"\n\n") + 1
    assert out[: len(out) - len(raw) + cut].endswith(b"X-Spam-Flag: YES\nX-Spam-Score: 0.9\n")  # the end of the block
    assert out.endswith(raw[cut:])
    assert [line for line in mda_header_lines(out) if line.lower().startswith(b"x-spam-")] == [b"X-Spam-Flag: YES", b"X-Spam-Score: 0.9"]
    assert not re.search(rb"[\r\n]X-Spam-(Flag|Score): (NO|0.01)", out.split(b"\n\n")[0])  # not after a bare CR either
    assert without_forged_prefix(out.replace(b"X-Spam-Flag: YES\nX-Spam-Score: 0.9\n", b"")) == raw


def test_a_forgery_in_the_body_is_left_alone():
    raw = b"Subject: x\n\nX-Spam-Flag: NO\n"
    assert add_headers(raw, [("X-Spam-Flag", "YES")]) == b"Subject: x\nX-Spam-Flag: YES\n\nX-Spam-Flag: NO\n"


def test_the_issues_forgery_in_a_real_process(smoke_models):
    raw = b"Subject: x\nnot a header line\nX-Spam-Flag: NO\n\nbody\n"
    proc = subprocess.run([sys.executable, "-m", "spamclf", "predict", "--models", str(smoke_models), "-"], input=raw, capture_output=True)
    assert proc.returncode in (0, 1, 2) and proc.stderr == b""
    head, body = proc.stdout.split(b"\n\n", 1)
    assert head.startswith(b"Subject: x\nnot a header line\nX-Forged-Spam-Flag: NO\nX-Spam-Flag: ") and body == b"body\n"
    assert [line.split(b":")[0] for line in mda_header_lines(proc.stdout) if line.startswith(b"X-Spam-")] == [b"X-Spam-Flag", b"X-Spam-Score", b"X-Spam-Status"]


def test_a_cr_only_message_gets_cr_headers_at_the_end_of_its_header_block(smoke_models, sample, verdicts):
    # Old-Mac line endings: no LF anywhere. The header block ends at CR CR, ours get CR endings.
    path = pick(sample, verdicts, "spam", "spam", 1)[0]
    raw = path.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r")
    raw = raw.replace(b"\rSubject:", b"\rX-Spam-Flag: NO\rSubject:", 1)  # and a forgery
    code, out, err = filter_cli(smoke_models, raw)
    assert b"\n" not in out  # no LF introduced
    cut = raw.index(b"\r\r") + 1
    assert raw.index(b"X-Spam-Flag: NO") < cut
    head = out[: len(out) - len(raw) + cut]
    renamed = len(b"X-Forged-Spam-") - len(b"X-Spam-")
    flag = b"YES" if code == 0 else b"NO"
    assert code in (0, 1) and err == ""
    assert re.fullmatch(rb"X-Spam-Flag: %s\rX-Spam-Score: [0-9.]+\rX-Spam-Status: [^\r]+\r" % flag, head[cut + renamed :])
    assert out.endswith(raw[cut:])
    assert without_forged_prefix(ADDED_CR.sub(b"", out)) == raw
    msg = headers_of(out)  # Python's parser takes CR for a line end: it reads ours, and only ours
    assert msg.get_all("X-Spam-Flag") == [flag.decode()] and msg["X-Forged-Spam-Flag"] == "NO"


def test_a_cr_only_message_without_an_empty_line():
    assert add_headers(b"Subject: x\rTo: y", [("X-Spam-Flag", "NO")]) == b"Subject: x\rTo: y\rX-Spam-Flag: NO\r"


def test_a_message_without_a_final_newline():
    assert add_headers(b"Subject: x", [("X-Spam-Flag", "NO")]) == b"Subject: x\nX-Spam-Flag: NO\n"
    assert add_headers(b"Subject: x\r\nTo: y", [("X-Spam-Flag", "NO")]) == b"Subject: x\r\nTo: y\r\nX-Spam-Flag: NO\r\n"


def test_line_ending():
    assert line_ending(b"a: b\r\nc: d\r\n") == b"\r\n"
    assert line_ending(b"a: b\nc: d\r\n") == b"\n"
    assert line_ending(b"a: b\rc: d\n") == b"\n"
    assert line_ending(b"a: b\rc: d\r") == b"\r"
    assert line_ending(b"") == b"\n"


LINES = st.lists(
    st.one_of(
        st.sampled_from([b"X-Zq-Flag: NO", b"X-Zq-Score:0.1", b"X-Zq-x : y", b"X-Zq-", b" folded", b"\tfolded", b"not a header",
                         b"Bad Name: v", b"Subject: s", b"From a@b Mon", b"", b" ", b"\r"]),
        st.binary(max_size=12),
    ),
    max_size=12,
)


@settings(max_examples=500, deadline=None)
@given(LINES, st.sampled_from([b"\n", b"\r\n", b"\r"]), st.binary(max_size=2000) | st.just(b""))
def test_arbitrary_messages_pass_through_with_only_our_headers_read_as_ours(lines, sep, tail):
    raw = sep.join(lines) + tail
    assume(b"forged" not in raw.lower() and len(re.findall(rb"(?i)x-zq-", raw)) == raw.count(b"X-Zq-"))
    fields = [("X-Zq-Flag", "NO"), ("X-Zq-Score", "0.5")]
    out = add_headers(raw, fields, prefix="X-Zq")
    eol = line_ending(raw)
    block = b"".join(f"{k}: {v}".encode() + eol for k, v in fields)
    at = out.index(block)
    rest = out[:at] + out[at + len(block) :]
    assert without_forged_prefix(rest, b"X-Forged-Zq-", b"X-Zq-") in (raw, raw + eol)  # every byte kept, bar the renames
    # What procmail and maildrop read as header holds ours and no other field under the prefix.
    assert [line for line in mda_header_lines(out) if re.match(rb"(?i)x-zq-[\x21-\x39\x3b-\x7e]*[ \t]*:", line)] == [
        f"{k}: {v}".encode() + eol[:-1] for k, v in fields
    ]


def mda_header_lines(msg: bytes) -> list[bytes]:
    """The lines procmail and maildrop match header rules against: every line up to the first empty one.
    A message with no LF at all is taken as CR-terminated (the MDAs see it as one line)."""
    sep = b"\n" if b"\n" in msg else b"\r"
    lines = []
    for line in msg.split(sep):
        if line in (b"", b"\r"):
            break
        lines.append(line)
    return lines


def without_forged_prefix(out: bytes, forged: bytes = b"X-Forged-Spam-", ours: bytes = b"X-Spam-") -> bytes:
    return out.replace(forged, ours)


def test_options_validate_the_prefix():
    with pytest.raises(ValueError, match="header prefix"):
        FilterOptions(header_prefix="X Spam:").header_names()


# ---------------------------------------------------------------------------------------- stdin once


def one_error_line(stderr: bytes | str, said: str) -> None:
    text = stderr.decode() if isinstance(stderr, bytes) else stderr
    assert text.startswith("Error: ") and text.count("\n") == 1 and said in text and "Traceback" not in text, text


@pytest.mark.parametrize("inputs", [["-", "-"], ["-", "DATA", "-"]], ids=["twice", "among-files"])
def test_stdin_twice_in_filter_mode_passes_the_message_through(smoke_models, sample, inputs):
    # `predict - -` scored the message, then an empty second one; as a filter's wrong command line
    # (no --format) it now delivers the message as it came and exits 3.
    raw = sorted((sample / "spam").iterdir())[0].read_bytes()
    inputs = [str(sample / "ham") if i == "DATA" else i for i in inputs]
    proc = subprocess.run([sys.executable, "-m", "spamclf", "predict", "--models", str(smoke_models), *inputs], input=raw, capture_output=True)
    assert proc.returncode == 3 and proc.stdout == raw
    one_error_line(proc.stderr, "'-' (stdin) is given more than once")


@pytest.mark.parametrize(
    "args",
    [
        ["predict", "--models", "MODELS", "--format", "jsonl", "-", "-"],
        ["predict", "--models", "MODELS", "--format", "table", "-", "DATA", "-"],
        ["evaluate", "--models", "MODELS", "--spam", "-", "--ham", "-"],
        ["train", "--models", "NEW", "--spam", "-", "--ham", "-"],
        ["preprocess", "--out", "NEW", "--spam", "-", "--data", "DATA", "--spam", "-"],
    ],
    ids=["predict-rows", "predict-among-files", "evaluate", "train", "preprocess"],
)
def test_stdin_twice_is_a_usage_error_in_every_command(smoke_models, sample, tmp_path, args):
    where = {"MODELS": str(smoke_models), "NEW": str(tmp_path / "new"), "DATA": str(sample)}
    result = CliRunner().invoke(main, [where.get(a, a) for a in args], input=b"Subject: x\n\nbody\n")
    assert result.exit_code == 2 and result.stdout_bytes == b""
    one_error_line(result.stderr, "'-' (stdin) is given more than once")
    assert not (tmp_path / "new").exists()


def test_stdin_twice_in_the_python_api_is_refused_before_anything_is_read(clf):
    from spamclf.errors import UsageError
    from spamclf.mail.sources import LabelledSource, iter_inputs, iter_labelled

    with pytest.raises(UsageError, match="more than once"):
        clf.predict(["-", "-"])
    with pytest.raises(UsageError):
        iter_inputs(["-", Path("-")], 100)
    with pytest.raises(UsageError):
        iter_labelled([LabelledSource("-", 1), LabelledSource("-", 0)], 100)
    assert [item.path for item in iter_inputs(["-"], 100)] == ["-"]  # once is fine


# ---------------------------------------------------------------------------- closed stdin and stdout


def spamclf_sh(redirect: str, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    """``spamclf ARGS`` in a real process whose stdin or stdout the shell closes (``<&-``, ``>&-``)."""
    words = " ".join(shlex.quote(w) for w in [sys.executable, "-m", "spamclf", *args])
    return subprocess.run(["sh", "-c", f"exec {words} {redirect}"], input=stdin, capture_output=True, timeout=120)


def test_filter_mode_with_stdin_closed_is_one_error_line(smoke_models):
    proc = spamclf_sh("<&-", "predict", "--models", str(smoke_models), "-")
    assert proc.returncode == 3 and proc.stdout == b""
    one_error_line(proc.stderr, "stdin is closed")


def test_filter_mode_with_stdout_closed_is_one_error_line(smoke_models, sample):
    raw = sorted((sample / "ham").iterdir())[0].read_bytes()
    proc = spamclf_sh(">&-", "predict", "--models", str(smoke_models), "-", stdin=raw)
    assert proc.returncode == 3
    one_error_line(proc.stderr, "cannot deliver the message: stdout is closed")


def test_a_wrong_filter_command_line_with_stdout_closed(smoke_models, sample):
    raw = sorted((sample / "ham").iterdir())[0].read_bytes()
    proc = spamclf_sh(">&-", "predict", "--modles", str(smoke_models), "-", stdin=raw)
    assert proc.returncode == 3 and b"Traceback" not in proc.stderr
    assert proc.stderr.decode().splitlines() == [
        "Error: No such option '--modles'. Did you mean '--models'?",
        "Error: cannot pass the message through: stdout is closed",
    ]


def test_rows_with_stdin_closed_give_an_error_row(smoke_models):
    proc = spamclf_sh("<&-", "predict", "--models", str(smoke_models), "--format", "csv", "-")
    assert proc.returncode == 3
    assert proc.stdout.decode().splitlines() == ["path,score,label,error", "-,,,stdin is closed"]
    assert proc.stderr.decode().splitlines() == ["0 scored, 1 failed"]


def test_rows_with_stdout_closed_are_one_error_line(smoke_models, sample):
    proc = spamclf_sh(">&-", "predict", "--models", str(smoke_models), str(sample / "ham"))
    assert proc.returncode == 1
    one_error_line(proc.stderr, "stdout is closed")
