"""The documentation says what the command line does: each command's page under docs/ carries
the options table generated from the Typer app (comp.cli.docs), and the README stays a page a
newcomer reads."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from comp.cli import docs

ROOT = Path(__file__).resolve().parents[1]


def test_every_command_has_a_page_whose_table_matches_its_help() -> None:
    assert docs.stale() == []  # else: python -m comp.cli.docs, and commit the pages
    assert set(docs.commands()) == {p.stem for p in (ROOT / "docs").glob("*.md")} - {
        "reliability", "development"}


def test_a_page_that_drifts_from_the_command_line_is_caught(tmp_path: Path) -> None:
    pages = tmp_path / "docs"
    shutil.copytree(ROOT / "docs", pages)
    page = pages / "submit.md"
    text = page.read_text()
    assert "| `--tta` | auto \\| on \\| off | `auto` |" in text
    page.write_text(text.replace("| `--tta` | auto \\| on \\| off | `auto` |",
                                 "| `--tta` | auto \\| on \\| off | `on` |"))
    (pages / "runs.md").unlink()
    (pages / "audit.md").write_text("# comp audit\n\nno table here\n")
    problems = docs.stale(pages)
    assert any(p.startswith(f"{pages / 'submit.md'}: its options table differs from "
                            "`comp submit --help`") for p in problems)
    assert f"{pages / 'runs.md'}: missing" in problems
    assert any("audit.md: no options markers" in p for p in problems)
    assert len(problems) == 3
    assert docs.updated(page.read_text(), "submit") == text  # the generator mends it


def test_the_table_reads_each_option_as_help_prints_it() -> None:
    table = docs.table("submit")
    rows = {line.split(" | ")[0].lstrip("| "): line for line in table.splitlines()
            if line.startswith("| `")}
    assert rows["`--ensemble`, `--no-ensemble`"].split(" | ")[1:3] == ["flag", "on"]
    assert rows["`--run`, `-r`"].split(" | ")[1] == "TEXT (repeat)"
    assert rows["`--leaks`"].split(" | ")[1:3] == ["auto \\| always \\| never \\| evidence",
                                                   "`auto`"]
    predict = docs.table("predict")
    assert "| RUN | TEXT | required |" in predict and "| IMAGES | PATH ... | required |" in predict


def test_the_readme_is_short_and_its_links_resolve() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) < 150
    for link in re.findall(r"\]\(([^)#]+)\)", text):
        assert (ROOT / link).exists(), link
