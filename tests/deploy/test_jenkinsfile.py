"""The Jenkinsfile only calls `make` targets that exist, in the stages the pipeline promises."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
JENKINSFILE = ROOT / "Jenkinsfile"
TARGET_RE = re.compile(r"^[a-z][a-z0-9-]*$")


def _sh_steps() -> list[str]:
    text = JENKINSFILE.read_text()
    return [m.group(2) for m in re.finditer(r"\bsh\s*\(?\s*(['\"])(.*?)\1", text)]


def _make_targets() -> set[str]:
    """Return the targets of the root Makefile that do something (a recipe or prerequisites).

    Read from make's own database (`make -pRrq`); a name only listed in .PHONY does not count.
    """
    make = shutil.which("make")
    assert make, "make not installed"
    result = subprocess.run(
        [make, "-C", str(ROOT), "-pRrq", "--no-print-directory", ":"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    targets = set()
    for block in result.stdout.split("\n\n"):
        lines = block.strip("\n").splitlines()
        if not lines or lines[0] == "# Not a target:":
            continue
        match = re.match(r"^([A-Za-z0-9_.-]+):(?!=)(.*)$", lines[0])
        if match and (
            match.group(2).strip() or any(line.startswith("#  recipe to execute") for line in lines)
        ):
            targets.add(match.group(1))
    assert "help" in targets, result.stderr  # the parse found the Makefile at all
    return targets


def test_every_sh_step_is_a_make_call():
    steps = _sh_steps()
    assert len(steps) >= 10
    for step in steps:
        words = step.split()
        assert words[0] == "make" and len(words) > 1, step
        assert all(TARGET_RE.match(w) for w in words[1:]), step


def test_every_called_target_exists_in_the_makefile():
    called = {w for step in _sh_steps() for w in step.split()[1:]}
    missing = called - _make_targets()
    assert not missing, f"Makefile lacks targets called by the Jenkinsfile: {sorted(missing)}"


def test_pipeline_has_the_promised_stages():
    text = JENKINSFILE.read_text()
    stages = re.findall(r"stage\('([^']+)'\)", text)
    for expected in (
        "Checkout",
        "Lint",
        "Unit tests",
        "Migration check",
        "Integration, fault and e2e tests",
        "Security scans",
        "Build images",
        "Push images",
        "Deploy to staging",
        "Approve production",
        "Deploy to production",
    ):
        assert expected in stages
    assert (
        stages.index("Deploy to staging")
        < stages.index("Approve production")
        < stages.index("Deploy to production")
    )
    called = " ".join(_sh_steps())
    for target in (
        "lint",
        "test-unit",
        "test-integration",
        "test-e2e",
        "coverage",
        "security",
        "migrations-check",
        "images",
        "push",
        "deploy-staging",
        "deploy-production",
    ):
        assert re.search(rf"\bmake( \S+)* {target}\b", called), target
    assert "input message:" in text
    assert re.search(
        r"post \{.*always \{.*junit .*recordCoverage.*failure \{.*mail ",
        text,
        re.DOTALL,
    )


def test_no_credential_literal_in_the_jenkinsfile():
    text = JENKINSFILE.read_text()
    assert "withCredentials" in text
    assert not re.search(r"(password|secret|token)\s*[:=]\s*['\"][^'\"$]", text, re.IGNORECASE)
