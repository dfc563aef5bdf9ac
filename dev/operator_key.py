"""Generate, once, the operator-token key pair of `make run` and the test harness.

Writes DIR/private.pem (admin's OPERATOR_JWT_PRIVATE_KEY_FILE, mode 0600) and DIR/jwks.json (main's
OPERATOR_JWKS_FILE). An existing private key is kept; jwks.json is always rewritten from it, so the
two agree. The key and the JWK come from admin's own code (admin/accounts/operator_tokens.py),
loaded by path so nothing of admin lands on sys.path.

Run from the repository root: ``python -m dev.operator_key var/operator-jwt``; with ``--env`` it
prints the pair as the one-line OPERATOR_JWT_PRIVATE_KEY and OPERATOR_JWKS entries of a compose .env.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_MODULE = ROOT / "admin" / "accounts" / "operator_tokens.py"


def _operator_tokens():
    name = "_admin_operator_tokens"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, _MODULE)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def ensure(directory: str | Path) -> tuple[Path, Path]:
    """Return (private.pem, jwks.json) under directory, creating the key pair when it is missing."""
    tokens = _operator_tokens()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    private, jwks = directory / "private.pem", directory / "jwks.json"
    if not private.exists():
        fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(tokens.generate_pem())
    keys = tokens.load_keys(pem_file=str(private))
    scratch = jwks.with_suffix(".json.tmp")
    scratch.write_text(json.dumps(keys.jwks(), indent=2) + "\n")
    scratch.replace(jwks)  # main re-reads the file when its mtime changes: never half-written
    return private, jwks


def env_lines(private: Path, jwks: Path) -> str:
    """Return OPERATOR_JWT_PRIVATE_KEY and OPERATOR_JWKS as one-line .env entries (PEM with \\n escapes)."""
    pem = private.read_text().strip().replace("\n", "\\n")
    return f"OPERATOR_JWT_PRIVATE_KEY={pem}\nOPERATOR_JWKS={json.dumps(json.loads(jwks.read_text()))}\n"


def main(argv: list[str] | None = None) -> int:
    """Create the key pair under the directory given (default var/operator-jwt); --env prints .env lines."""
    args = sys.argv[1:] if argv is None else argv
    as_env = "--env" in args
    paths = [arg for arg in args if arg != "--env"]
    private, jwks = ensure(paths[0] if paths else ROOT / "var" / "operator-jwt")
    sys.stdout.write(
        env_lines(private, jwks) if as_env else f"operator key: {private}\noperator JWKS: {jwks}\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
