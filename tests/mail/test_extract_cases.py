"""Extraction cases as data: each ``tests/data/extract/NAME.eml`` beside ``NAME.txt``, the text extraction
must give for it. A new hostile or ugly message is a new pair of files, not new test code."""

from __future__ import annotations

from pathlib import Path

import pytest

from spamclf.mail.extract import extract

CASES = Path(__file__).resolve().parent.parent / "data" / "extract"


@pytest.mark.parametrize("message", sorted(CASES.glob("*.eml")), ids=lambda p: p.stem)
def test_extraction_case(message):
    expected = message.with_suffix(".txt").read_text(encoding="utf-8").removesuffix("\n")
    assert extract(message.read_bytes()) == expected


def test_every_case_has_its_expected_text():
    messages = {p.stem for p in CASES.glob("*.eml")}
    assert len(messages) >= 6 and messages == {p.stem for p in CASES.glob("*.txt")}
