"""README's result tables are rendered from reports/*.json (mmrec.readme) and must match them."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from mmrec import readme

# Tables in README.md that no report in reports/ produces, each with the reason it is allowed.
# A new results table must come from a report through a `<!-- report: ... -->` block instead.
NOT_FROM_REPORTS = {
    "| command | what it does |": "the CLI reference, not a result",
    "| likes (onboarding) | first 12 picks |": "printed by tools/new_user_picks.py, no report",
    "| what | figure (development VM, 2 shared cores) |": "docs/RELIABILITY.md test figures",
    "| what | figure (development VM, 2 shared cores, load average 10-22) |": "docs/RELIABILITY.md",
}


def test_readme_matches_the_reports():
    text = readme.README.read_text()
    rendered = readme.render(text)
    assert rendered == text, "README.md differs from reports/*.json: run python -m mmrec.readme"
    assert readme.main(["--check"]) == 0
    # every block is used: a block nobody renders would hide a table that drifted
    assert {m["name"] for m in readme.BLOCK.finditer(text)} == set(readme.BLOCKS)


def test_every_results_table_is_rendered_from_a_report():
    outside, inside = [], False
    previous = ""
    for line in readme.README.read_text().splitlines():
        if line.startswith("<!-- report:"):
            inside = True
        elif line.startswith("<!-- /report -->"):
            inside = False
        elif line.startswith("|") and not previous.startswith("|") and not inside:
            outside.append(line.strip())
        previous = line
    assert sorted(outside) == sorted(NOT_FROM_REPORTS)


def test_a_hand_edited_figure_fails_the_check(tmp_path):
    text = readme.README.read_text()
    block = re.search(
        r"<!-- report: policy.lift-table -->\n.*?\n\| popularity \| ([^|]+)\|", text, re.S
    )
    figure = block.group(1).strip()
    edited = text.replace(figure, "+9.999 ± 0.001 (+99.9%)", 1)
    assert edited != text
    path = tmp_path / "README.md"
    path.write_text(edited)
    assert readme.render(edited) == text  # rendering restores the report's figure
    assert readme.main(["--check", "--readme", str(path)]) == 1
    assert readme.main(["--readme", str(path)]) == 0
    assert path.read_text() == text


def test_a_changed_report_changes_the_readme(tmp_path, monkeypatch):
    reports = tmp_path / "reports"
    shutil.copytree(readme.REPORTS, reports)
    policy = json.loads((reports / "policy.json").read_text())
    policy["lifts"]["popularity"]["satisfaction"]["relative"] = 0.5
    policy["commit"] = "0123456789ab"
    (reports / "policy.json").write_text(json.dumps(policy))
    monkeypatch.setattr(readme, "REPORTS", reports)
    text = readme.README.read_text()
    new = readme.render(text)
    assert new != text
    assert "+50.0%" in new and "commit `0123456789ab`" in new


def test_unknown_block_is_refused():
    with pytest.raises(KeyError, match="no-such-report"):
        readme.render("<!-- report: no-such-report.table -->\n<!-- /report -->\n")


def test_tables_splits_markdown():
    md = "# t\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\ntext\n| c |\n|---|\n"
    assert readme.tables(md) == ["| a | b |\n|---|---|\n| 1 | 2 |", "| c |\n|---|"]
