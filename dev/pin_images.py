"""Pin every third-party image to the digest its tag names today: `make pin-images`.

A tag can be re-pushed; a digest cannot. This rewrites `image: name:tag` in docker-compose.yml and
`FROM name:tag` / `ARG PYTHON_IMAGE=name:tag` in the Dockerfiles to `name:tag@sha256:…` (the tag
stays for the reader, the digest is what Docker pulls). Run it again to move every pin to what the
tags name now, review the diff, commit. It asks Docker Hub's registry API (anonymous pull tokens)
for the digest of each tag's manifest list, so it needs to reach registry-1.docker.io.

Usage: python -m dev.pin_images [--check]   (--check: exit 1 when an image is not pinned)
"""

from __future__ import annotations

import json
import re
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILES = (
    ROOT / "docker-compose.yml",
    # The third-party servers of the Kubernetes manifests (deploy/k8s/README.md).
    ROOT / "deploy" / "k8s" / "base" / "redis.yaml",
    ROOT / "deploy" / "k8s" / "base" / "mysql.yaml",
    ROOT / "deploy" / "k8s" / "base" / "rabbitmq.yaml",
    ROOT / "admin" / "Dockerfile",
    ROOT / "main" / "Dockerfile",
    ROOT / "frontend" / "Dockerfile",
)
# name:tag, optionally already @sha256:<64 hex>, after `image:`, `FROM` or `ARG PYTHON_IMAGE=`.
REFERENCE = re.compile(
    r"(?P<lead>^\s*(?:image:\s*|FROM\s+|ARG\s+PYTHON_IMAGE=))"
    r"(?P<name>[a-z0-9][a-z0-9._/-]*):(?P<tag>[A-Za-z0-9._-]+)(?:@sha256:[0-9a-f]{64})?",
    re.MULTILINE,
)
MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
    )
)


def docker_hub_digest(name: str, tag: str) -> str:
    """Return the sha256 digest Docker Hub serves for name:tag (the multi-platform index)."""
    repository = name if "/" in name else f"library/{name}"
    token_url = f"https://auth.docker.io/token?service=registry.docker.io&scope=repository:{repository}:pull"
    with urllib.request.urlopen(token_url, timeout=20) as response:  # noqa: S310 - fixed https URL
        token = json.load(response)["token"]
    request = urllib.request.Request(
        f"https://registry-1.docker.io/v2/{repository}/manifests/{tag}",
        method="HEAD",
        headers={"Authorization": f"Bearer {token}", "Accept": MANIFEST_TYPES},
    )
    with urllib.request.urlopen(request, timeout=20) as response:  # noqa: S310 - fixed https URL
        digest = response.headers["Docker-Content-Digest"]
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest or ""):
        raise RuntimeError(f"{name}:{tag}: the registry answered no digest")
    return digest


def pin(text: str, resolve: Callable[[str, str], str]) -> str:
    """Return text with every name:tag reference pinned to resolve(name, tag)."""

    def replace(match: re.Match) -> str:
        name, tag = match["name"], match["tag"]
        return f"{match['lead']}{name}:{tag}@{resolve(name, tag)}"

    return REFERENCE.sub(replace, text)


def unpinned(text: str) -> list[str]:
    """Return the name:tag references of text that carry no digest."""
    return [
        m.group(0).split()[-1].split("=")[-1]
        for m in REFERENCE.finditer(text)
        if "@sha256:" not in m.group(0)
    ]


def main(argv: list[str]) -> int:
    """Pin every file, or with --check list what is not pinned (exit 1 if anything)."""
    if "--check" in argv:
        missing = {str(path.relative_to(ROOT)): unpinned(path.read_text()) for path in FILES}
        missing = {path: refs for path, refs in missing.items() if refs}
        for path, refs in missing.items():
            print(f"{path}: not pinned: {', '.join(refs)}")
        return 1 if missing else 0
    cache: dict[tuple[str, str], str] = {}

    def resolve(name: str, tag: str) -> str:
        if (name, tag) not in cache:
            cache[(name, tag)] = docker_hub_digest(name, tag)
            print(f"{name}:{tag} -> {cache[(name, tag)]}")
        return cache[(name, tag)]

    for path in FILES:
        path.write_text(pin(path.read_text(), resolve))
    print("pinned; review `git diff` and commit")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
