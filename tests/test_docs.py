"""The documentation keeps up with the code: every command, option and config key is documented, every link leads somewhere."""

from __future__ import annotations

import re

import click
import pytest

from spamclf.cli import main
from spamclf.config import defaults

from conftest import ROOT

CLI_DOC = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")


def section(doc: str, heading: str) -> str:
    """The text under ``## heading``, up to the next heading of the same level."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", doc, re.M | re.S)
    assert match, f"no section '## {heading}'"
    return match.group(1)


@pytest.mark.parametrize("name", sorted(main.commands))
def test_every_command_and_option_is_documented(name):
    text = section(CLI_DOC, f"spamclf {name}")
    for param in main.commands[name].params:
        if isinstance(param, click.Argument):
            assert param.metavar in text or param.name.upper() in text, f"{name}: argument {param.name} is not documented"
            continue
        for opt in param.opts + param.secondary_opts:
            if opt.startswith("--"):
                assert f"`{opt}" in text, f"spamclf {name} {opt} is not documented in docs/cli.md"


def test_every_config_key_is_documented():
    doc = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    for section_name, keys in defaults().items():
        row = next((line for line in doc.splitlines() if line.startswith(f"| `{section_name}`")), "")
        for key in keys:
            assert f"`{key}`" in row, f"config key {section_name}.{key} is not documented in docs/configuration.md"


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


PAGES = [ROOT / "README.md", ROOT / "benchmarks" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_leads_somewhere(page):
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):
            continue  # http:, https:, mailto:
        path, _, fragment = target.partition("#")
        dest = (page.parent / path) if path else page
        assert dest.exists(), f"{page.name} links to {target}, which does not exist"
        if fragment:
            headings = re.findall(r"^#+ (.*)$", dest.read_text(encoding="utf-8"), re.M)
            assert fragment in {anchor(h) for h in headings}, f"{page.name} links to {target}: no such heading"


def test_readme_stays_short():
    # a user's README of about 10 KB (issue 18): reference lives in docs/, results in benchmarks/README.md
    assert len((ROOT / "README.md").read_bytes()) <= 10_240
