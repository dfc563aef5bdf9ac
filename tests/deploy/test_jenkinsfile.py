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
        "security-deps",
        "security-code",
        "security-config",
        "security-images",
        "migrations-check",
        "images",
        "push",
        "deploy-staging",
        "deploy-production",
    ):
        assert re.search(rf"\bmake( \S+)* {target}\b", called), target
    assert "input message:" in text
    assert "submitter: 'release-managers'" in text, "anyone with build rights could deploy to production"
    assert re.search(
        r"post \{.*always \{.*junit .*recordCoverage.*failure \{.*mail ",
        text,
        re.DOTALL,
    )


def test_no_credential_literal_in_the_jenkinsfile():
    text = JENKINSFILE.read_text()
    assert "withCredentials" in text
    assert not re.search(r"(password|secret|token)\s*[:=]\s*['\"][^'\"$]", text, re.IGNORECASE)


def _stage_block(text: str, name: str) -> str:
    """Return the text of stage(name) up to its matching closing brace."""
    start = text.index(f"stage('{name}')")
    depth, i = 0, text.index("{", start)
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[start : j + 1]
    raise AssertionError(f"unbalanced braces after stage {name}")


def test_builds_and_deploys_run_on_separate_agents():
    """Branch builds (docker build, tests, scans) never run where the deploy engine is reachable."""
    text = JENKINSFILE.read_text()
    assert re.search(r"pipeline \{\s*agent none", text), "a pipeline-wide agent would share one engine"
    build = _stage_block(text, "Build and test")
    assert "agent { label 'build' }" in build
    for target in ("images", "test-integration", "test-e2e", "security-images"):
        assert f"make {target}'" in build
    for name in ("Deploy to staging", "Deploy to production"):
        block = _stage_block(text, name)
        assert "agent { label 'deploy' }" in block
        assert "branch 'main'" in block
        assert "make images" not in block and "make test" not in block
    assert "agent" not in _stage_block(text, "Approve production").split("steps", 1)[0].replace(
        "// No agent", ""
    )
    assert "deploy" not in build.replace("Deploy", "")


def test_every_scan_fails_the_build_on_a_finding():
    makefile = (ROOT / "Makefile").read_text()

    def recipe(target: str) -> str:
        return makefile.split(f"\n{target}:", 1)[1].split("\n\n", 1)[0]

    assert "-lll" not in makefile, "bandit at HIGH only lets medium findings through"
    assert "bandit" in recipe("security-code") and " -ll" in recipe("security-code")
    assert ".ci/secrets-scan" in recipe("security-code")  # fails on findings outside the baseline
    assert "trivy config --exit-code 1" in recipe("security-config")
    images = recipe("security-images")
    assert "config --images" in images and "trivy image --exit-code 1" in images
    assert "|| status=1" in images, "one image's findings must not hide the next image's scan"
    # Every image compose runs is one the scan covers (config --images lists them all).
    compose = subprocess.run(
        [
            "docker-compose",
            "--env-file",
            str(ROOT / ".env.example"),
            "-f",
            str(ROOT / "docker-compose.yml"),
            "config",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    third_party = set(re.findall(r"image: ((?!microservices/)\S+)", compose))
    assert {"redis", "rabbitmq", "mysql", "prom/prometheus", "grafana/grafana"} <= {
        i.split(":")[0] for i in third_party
    }
