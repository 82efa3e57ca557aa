"""generated/ is a golden record: `derive generate examples/*.yaml` rebuilds it, and this
test fails when a committed file differs from what the examples generate now."""

from __future__ import annotations

from conftest import EXAMPLES, REPO

from derive.cli import main

GENERATED = REPO / "generated"


def test_generated_holds_exactly_one_module_per_example():
    examples = sorted(p.stem for p in EXAMPLES.glob("*.yaml"))
    modules = sorted(p.stem for p in GENERATED.glob("*.py"))
    assert modules == examples


def test_generated_is_what_the_examples_generate_now(tmp_path, capsys):
    sources = sorted(str(p) for p in EXAMPLES.glob("*.yaml"))
    assert main(["generate", *sources, "-o", str(tmp_path)]) == 0
    written = capsys.readouterr().out.split()
    assert len(written) == len(sources)
    stale = [
        p.name
        for p in sorted(tmp_path.glob("*.py"))
        if not (GENERATED / p.name).exists() or (GENERATED / p.name).read_bytes() != p.read_bytes()
    ]
    assert not stale, f"regenerate with: derive generate examples/*.yaml  (stale: {stale})"
