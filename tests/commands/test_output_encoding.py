"""Output is always valid in its format, whatever the file names hold and whatever the locale.

On Linux a file name is any bytes but ``/`` and NUL. CSV and JSON Lines stay valid UTF-8 and give
back the exact bytes of a name that is not (JSON Lines: ``path_bytes``; CSV: a ``base64:`` cell);
a CR in a name cannot split a CSV row; the table escapes what a terminal or the locale cannot
take; a score is always a finite number.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from spamclf.commands.predict import write_predictions
from spamclf.commands.predict import Prediction

ROOT = Path(__file__).resolve().parents[2]
NAMES = [b"bad\xff\xfe.eml", b"cr\rname.eml", "café.eml".encode(), "日本語.eml".encode(), b"plain.eml"]


def exact_bytes_of_jsonl(row: dict) -> bytes:
    return base64.b64decode(row["path_bytes"]) if "path_bytes" in row else row["path"].encode("utf-8")


def exact_bytes_of_csv(cell: str) -> bytes:
    return base64.b64decode(cell[len("base64:"):]) if cell.startswith("base64:") else cell.encode("utf-8")


def strict_json(line: str):
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(line, parse_constant=refuse)


@pytest.fixture(scope="module")
def odd_names(tmp_path_factory, sample) -> Path:
    """A folder of one spam message under each of NAMES."""
    folder = tmp_path_factory.mktemp("names")
    spam = sorted((sample / "spam").iterdir())[0].read_bytes()
    for name in NAMES:
        Path(os.fsdecode(os.fsencode(folder) + b"/" + name)).write_bytes(spam)
    return folder


def predict(models, folder, fmt: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "spamclf", "predict", "--models", str(models), "--format", fmt, str(folder)],
        capture_output=True, cwd=ROOT, env={**os.environ, **env},
    )


@pytest.mark.parametrize("locale", [{}, {"PYTHONIOENCODING": "latin-1"}], ids=["utf-8", "latin-1"])
def test_jsonl_is_utf8_and_gives_back_every_name(odd_names, smoke_models, locale):
    proc = predict(smoke_models, odd_names, "jsonl", **locale)
    assert proc.returncode == 0, proc.stderr.decode()
    rows = [strict_json(line) for line in proc.stdout.decode("utf-8").splitlines()]  # strict UTF-8, strict JSON
    assert sorted(exact_bytes_of_jsonl(r) for r in rows) == sorted(os.fsencode(odd_names) + b"/" + n for n in NAMES)
    bad = [r for r in rows if "path_bytes" in r]
    assert len(bad) == 1 and bad[0]["path"] == f"{odd_names}/bad\ufffd\ufffd.eml"  # path stays a string
    assert all(isinstance(r["score"], float) and math.isfinite(r["score"]) for r in rows)


@pytest.mark.parametrize("locale", [{}, {"PYTHONIOENCODING": "latin-1"}], ids=["utf-8", "latin-1"])
def test_csv_is_utf8_one_row_per_name_and_gives_back_every_name(odd_names, smoke_models, locale):
    proc = predict(smoke_models, odd_names, "csv", **locale)
    assert proc.returncode == 0, proc.stderr.decode()
    text = proc.stdout.decode("utf-8")
    assert f'"{odd_names}/cr\rname.eml"' in text  # a bare CR is quoted
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == ["path", "score", "label", "error"] and len(rows) == 1 + len(NAMES)
    assert sorted(exact_bytes_of_csv(r[0]) for r in rows[1:]) == sorted(os.fsencode(odd_names) + b"/" + n for n in NAMES)


def test_table_in_a_latin1_locale_escapes_what_it_cannot_encode(odd_names, smoke_models):
    proc = predict(smoke_models, odd_names, "table", PYTHONIOENCODING="latin-1")
    assert proc.returncode == 0, proc.stderr.decode()
    lines = proc.stdout.decode("latin-1").splitlines()
    assert len(lines) == 1 + len(NAMES) and all(line.startswith("spam ") for line in lines[1:])
    shown = {line.split("  ")[-1] for line in lines[1:]}
    assert f"{odd_names}/bad\\xff\\xfe.eml" in shown and f"{odd_names}/cr\\rname.eml" in shown
    assert f"{odd_names}/café.eml" in shown  # latin-1 holds é
    assert f"{odd_names}/\\u65e5\\u672c\\u8a9e.eml" in shown  # it has no kanji


def test_a_score_that_is_not_finite_is_an_error_row_in_every_format():
    rows = [Prediction("nan.eml", float("nan"), "spam"), Prediction("inf.eml", float("inf"), "spam"), Prediction("ok.eml", 0.25, "ham")]
    written = {}
    for fmt in ("jsonl", "csv", "table"):
        out = io.StringIO()
        counts = write_predictions(iter(rows), fmt, out)
        assert (counts["scored"], counts["failed"]) == (1, 2)
        written[fmt] = out.getvalue().splitlines()
    parsed = [strict_json(line) for line in written["jsonl"]]
    assert [r["score"] for r in parsed] == [None, None, 0.25] and [r["label"] for r in parsed] == [None, None, "ham"]
    assert parsed[0]["error"] and parsed[1]["error"]
    assert [r[1] for r in csv.reader(written["csv"][1:])] == ["", "", "0.250000"]
    assert [line.split()[0] for line in written["table"][1:]] == ["ERROR", "ERROR", "ham"]


def test_a_cr_in_a_name_cannot_split_a_csv_row():
    out = io.StringIO()
    write_predictions(iter([Prediction("cr\rname.eml", 0.5, "spam"), Prediction("next.eml", 0.25, "ham")]), "csv", out)
    rows = list(csv.reader(io.StringIO(out.getvalue(), newline="")))
    assert [r[0] for r in rows] == ["path", "cr\rname.eml", "next.eml"]


def test_csv_path_cells_read_back_one_way():
    from spamclf.records import csv_path

    for name in [b"plain.eml", b"bad\xff.eml", b"base64:looks-encoded.eml", "café.eml".encode()]:
        assert exact_bytes_of_csv(csv_path(os.fsdecode(name))) == name


def test_preprocess_and_the_report_keep_a_name_that_is_not_utf8(tmp_path, sample, smoke_models):
    data = tmp_path / "data"
    shutil.copytree(sample, data)
    first = sorted((data / "spam").iterdir())[0]
    odd = os.fsencode(data / "spam") + b"/odd\xff.eml"
    os.rename(first, odd)
    split = tmp_path / "split"
    run = [sys.executable, "-m", "spamclf"]
    pre = subprocess.run([*run, "preprocess", "--data", str(data), "--out", str(split), "-q"], capture_output=True, cwd=ROOT)
    assert pre.returncode == 0, pre.stderr.decode()
    rows = [json.loads(line) for name in ("train.jsonl", "test.jsonl") for line in (split / name).read_text(encoding="utf-8").splitlines()[1:]]
    assert [base64.b64decode(r["path_bytes"]) for r in rows if "path_bytes" in r] == [odd]

    # --threshold 1: every spam message is misclassified, so the odd name is in the report's list.
    report = tmp_path / "report"
    ev = subprocess.run(
        [*run, "evaluate", "--models", str(smoke_models), "--data", str(data), "--threshold", "1", "--report", str(report), "-q"],
        capture_output=True, cwd=ROOT,
    )
    assert ev.returncode == 0, ev.stderr.decode()
    cells = [r[0] for r in csv.reader(io.StringIO((report / "misclassified.csv").read_text(encoding="utf-8"), newline=""))]
    assert odd in {exact_bytes_of_csv(c) for c in cells[1:]}
    assert "odd\\xff.eml" in (report / "report.html").read_text(encoding="utf-8")
