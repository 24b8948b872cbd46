"""The package reads top-down in the order the data flows through it: no module imports a later stage; every benchmark imports."""

from __future__ import annotations

import ast
import importlib

import pytest

from conftest import ROOT

PACKAGE = ROOT / "spamclf"
# Stages in data-flow order; a module may import its own stage and earlier ones only.
STAGES = ["base", "mail", "model", "reports", "commands", "ray_engine", "serving", "cli"]
BASE = {"errors", "config", "printable", "progress", "records", "writing", "workers", "spamassassin_corpus", "__init__", "__main__"}


def stage_of(module: str) -> str:
    """``mail.sources`` -> ``mail``; ``config`` -> ``base``; ``cli`` -> ``cli``."""
    head = module.split(".")[0]
    if head in BASE:
        return "base"
    return head


def imports_of(path):
    """The spamclf modules that the module at ``path`` imports (dotted, under spamclf)."""
    module = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
    package = module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = [*base, *(node.module.split(".") if node.module else [])]
                names = [target + [alias.name] for alias in node.names] if not node.module else [target]
                found.update(".".join(n) for n in names if n)
            elif node.module and node.module.startswith("spamclf."):
                found.add(node.module[len("spamclf.") :])
        elif isinstance(node, ast.Import):
            found.update(a.name[len("spamclf.") :] for a in node.names if a.name.startswith("spamclf."))
    return module, found


def test_no_module_imports_a_later_stage():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module, imported = imports_of(path)
        if module.split(".")[-1] in ("__init__", "__main__") and module.count(".") == 0:
            continue  # spamclf/__init__ maps the public API to its modules; __main__ runs the CLI
        for target in imported:
            if target in ("__version__", ""):
                continue
            if STAGES.index(stage_of(target)) > STAGES.index(stage_of(module)):
                wrong.append(f"{module} imports {target}")
    assert not wrong, "modules reaching back up the pipeline:\n" + "\n".join(sorted(wrong))


def test_every_stage_is_a_package_and_every_module_has_a_stage():
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        assert stage_of(module) in STAGES, f"{module} belongs to no stage"


@pytest.mark.parametrize("name", sorted(p.stem for p in (ROOT / "benchmarks").glob("*.py") if p.stem != "__init__"))
def test_every_benchmark_imports(name):
    """A benchmark that cannot even be imported (a test module it borrows cases from moved) fails here,
    not the next time someone runs it."""
    importlib.import_module(f"benchmarks.{name}")
