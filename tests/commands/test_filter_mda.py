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

EXAMPLES = Path(__file__).resolve().parents[2] / "configs" / "mail"
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


# A forged verdict where the MDAs still read header: everything up to the first empty line is header
# to procmail and maildrop, whatever line comes before it.
FORGERIES = {
    "after-a-line-that-is-not-a-header": lambda m: m.replace(b"\n", b"\nnot a header line\nX-Spam-Flag: NO\n", 1),
    "after-a-malformed-field-name": lambda m: m.replace(b"\n", b"\nBad Name: x\nX-Spam-Flag: NO\n", 1),
    "first-line-starts-with-a-space": lambda m: b" leading space\nX-Spam-Flag: NO\n" + m.split(b"\n", 1)[1],
}


def sort_by_flag(mda: str, home: Path, raw: bytes, with_filter: bool = True) -> dict[str, list[bytes]]:
    """Deliver ``raw`` with ``mda`` and rules that trust ``X-Spam-Flag: NO`` first, then file YES as spam:
    the folder each message landed in. ``with_filter``: spamclf runs first, as in configs/mail."""
    models = home / ".spamclf" / "models"
    command = f"spamclf predict --models {models} --exit-zero -"
    folders = {"ham": home / "Maildir" / ".Ham", "spam": home / "Maildir" / ".Spam", "inbox": home / "Maildir"}
    for folder in folders.values():
        for sub in ("cur", "new", "tmp"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
    if mda == "procmail":
        rules = f"SHELL=/bin/sh\nPATH={BIN}:/usr/bin:/bin\nMAILDIR={home}\n"
        rules += f":0fw\n| {command}\n" if with_filter else ""
        rules += f":0 H\n* ^X-Spam-Flag: NO\n{folders['ham']}/\n:0 H\n* ^X-Spam-Flag: YES\n{folders['spam']}/\n:0\n{folders['inbox']}/\n"
        argv = ["procmail", "-m", str(home / "rc")]
    else:
        rules = f'PATH="{BIN}:/usr/bin:/bin"\n'
        rules += f'xfilter "{command}"\n' if with_filter else ""
        rules += f'if (/^X-Spam-Flag: NO/)\n{{\n  to "{folders["ham"]}"\n}}\nif (/^X-Spam-Flag: YES/)\n{{\n  to "{folders["spam"]}"\n}}\nto "{folders["inbox"]}"\n'
        argv = ["maildrop", str(home / "rc")]
    (home / "rc").write_text(rules)
    (home / "rc").chmod(0o600)
    proc = subprocess.run(argv, input=raw, env=env_for(home), capture_output=True, cwd=home)
    assert proc.returncode == 0, proc.stderr
    found = {name: delivered(folder) for name, folder in folders.items()}
    for name, folder in folders.items():
        for p in (folder / "new").iterdir():
            p.unlink()
    return found


@pytest.mark.parametrize("mda", ["procmail", "maildrop"])
@pytest.mark.parametrize("forge", FORGERIES.values(), ids=FORGERIES.keys())
def test_a_forged_verdict_anywhere_in_the_header_block_does_not_reach_the_mda(mda, forge, home, sample, smoke_models):
    if shutil.which(mda) is None:
        pytest.skip(f"{mda} is not installed")
    spam, _ = spam_and_ham(sample, smoke_models)
    forged = forge(spam)
    assert forged != spam
    # Unfiltered, the MDA reads the forgery as header: what makes it a forgery worth renaming.
    assert len(sort_by_flag(mda, home, forged, with_filter=False)["ham"]) == 1
    got = sort_by_flag(mda, home, forged)
    assert got["ham"] == [] and len(got["spam"]) == 1, got  # our YES is read, the forged NO is not
    [out] = got["spam"]
    assert b"\nX-Forged-Spam-Flag: NO\n" in out
    # Every other byte as it came (procmail's Maildir file drops the mbox From line, maildrop's keeps it).
    unfiltered = ADDED.sub(b"", out).replace(b"X-Forged-Spam-", b"X-Spam-")
    assert unfiltered == forged or (forged.startswith(b"From ") and unfiltered == forged.split(b"\n", 1)[1])
