"""The README's mail-pipeline snippets (configs/mail/) run for real: procmail and maildrop where installed,
the Postfix pipe script always (with a stand-in for sendmail, which only re-injects the message)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "configs" / "mail"
BIN = str(Path(sys.executable).parent)  # where the `spamclf` script of this environment lives
ADDED = re.compile(rb"X-Spam-(?:Flag|Score|Status): [^\r\n]*\r?\n")


@pytest.fixture
def home(tmp_path, smoke_models) -> Path:
    (tmp_path / ".spamclf").mkdir()
    shutil.copytree(smoke_models, tmp_path / ".spamclf" / "models")
    return tmp_path


def spam_and_ham(sample, smoke_models) -> tuple[bytes, bytes]:
    """A spam the smoke model flags and a ham it passes (both real sample messages)."""
    from spamclf.commands.predict import Classifier

    clf = Classifier.load(smoke_models)
    found = {}
    for want in ("spam", "ham"):
        found[want] = next(Path(row.path).read_bytes() for row in clf.predict([sample / want]) if row.label == want)
    return found["spam"], found["ham"]


def env_for(home: Path) -> dict:
    return {**os.environ, "HOME": str(home), "PATH": f"{BIN}:/usr/bin:/bin"}


def delivered(folder: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted((folder / "new").iterdir())] if (folder / "new").is_dir() else []


@pytest.mark.skipif(shutil.which("procmail") is None, reason="procmail is not installed")
def test_procmailrc(home, sample, smoke_models):
    spam, ham = spam_and_ham(sample, smoke_models)
    rc = home / "procmailrc"
    # procmail, like maildrop, takes HOME from the password file, not the environment: spell it out.
    text = (EXAMPLES / "procmailrc").read_text().replace("$HOME", str(home))
    rc.write_text(f"SHELL=/bin/sh\nPATH={BIN}:/usr/bin:/bin\nMAILDIR={home}/Mail\nDEFAULT={home}/Mail/inbox/\n" + text)
    (home / "Mail").mkdir()
    for raw in (spam, ham):
        proc = subprocess.run(["procmail", "-m", str(rc)], input=raw, env=env_for(home), capture_output=True, cwd=home)
        assert proc.returncode == 0, proc.stderr
    [got_spam] = delivered(home / "Mail" / "spam")
    [got_ham] = delivered(home / "Mail" / "inbox")
    assert b"\nX-Spam-Flag: YES\n" in got_spam and b"\nX-Spam-Flag: NO\n" in got_ham
    assert ADDED.sub(b"", got_spam).endswith(spam.split(b"\n", 1)[1])

    shutil.rmtree(home / ".spamclf" / "models")  # a broken filter: the MTA is told to retry
    proc = subprocess.run(["procmail", "-m", str(rc)], input=ham, env=env_for(home), capture_output=True, cwd=home)
    assert proc.returncode == 75
    assert len(delivered(home / "Mail" / "inbox")) == 1


@pytest.mark.skipif(shutil.which("maildrop") is None, reason="maildrop is not installed")
def test_maildrop_mailfilter(home, sample, smoke_models):
    spam, ham = spam_and_ham(sample, smoke_models)
    for folder in ("Maildir", "Maildir/.Spam"):
        for sub in ("cur", "new", "tmp"):
            (home / folder / sub).mkdir(parents=True)
    # maildrop takes HOME from the password file, not the environment: spell it out.
    text = (EXAMPLES / "mailfilter").read_text().replace("$HOME", str(home))
    rc = home / "mailfilter"
    rc.write_text(f'PATH="{BIN}:/usr/bin:/bin"\n' + text)
    rc.chmod(0o600)
    for raw in (spam, ham):
        proc = subprocess.run(["maildrop", str(rc)], input=raw, env=env_for(home), capture_output=True, cwd=home)
        assert proc.returncode == 0, proc.stderr
    [got_spam] = delivered(home / "Maildir" / ".Spam")
    [got_ham] = delivered(home / "Maildir")
    assert b"\nX-Spam-Flag: YES\n" in got_spam and b"\nX-Spam-Flag: NO\n" in got_ham

    shutil.rmtree(home / ".spamclf" / "models")
    proc = subprocess.run(["maildrop", str(rc)], input=ham, env=env_for(home), capture_output=True, cwd=home)
    assert proc.returncode == 75  # EX_TEMPFAIL: the MTA keeps the message and retries
    assert len(delivered(home / "Maildir")) == 1


def test_postfix_pipe_script(home, sample, smoke_models, tmp_path):
    spam, ham = spam_and_ham(sample, smoke_models)
    fake = tmp_path / "sendmail"
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$OUT.args"\ncat > "$OUT.msg"\nexit "${SENDMAIL_EXIT:-0}"\n')
    fake.chmod(0o755)
    script = EXAMPLES / "spamclf-postfix-filter"
    base = {**env_for(home), "SPAMCLF": f"{BIN}/spamclf", "SPAMCLF_MODELS": str(home / ".spamclf" / "models"), "SENDMAIL": str(fake)}

    def run(raw: bytes, **extra) -> tuple[int, bytes, list[str]]:
        out = tmp_path / "sent"
        proc = subprocess.run([str(script), "-f", "a@example.com", "--", "b@example.org"], input=raw, env={**base, "OUT": str(out), **extra}, capture_output=True)
        msg = out.with_suffix(".msg").read_bytes() if out.with_suffix(".msg").exists() else b""
        args = out.with_suffix(".args").read_text().split() if out.with_suffix(".args").exists() else []
        return proc.returncode, msg, args

    code, msg, args = run(spam)
    assert code == 0 and args == ["-f", "a@example.com", "--", "b@example.org"]
    assert b"\nX-Spam-Flag: YES\n" in msg and ADDED.sub(b"", msg) == spam
    code, msg, _ = run(ham)
    assert code == 0 and b"\nX-Spam-Flag: NO\n" in msg

    code, msg, _ = run(ham, SPAMCLF_MODELS=str(tmp_path / "missing"))
    assert code == 0 and msg == ham  # spamclf failed: the message is delivered as it came

    code, _, _ = run(ham, SENDMAIL_EXIT="1")
    assert code == 75  # re-injection failed: Postfix keeps the message and retries
