"""docker-compose.yml, .env.example and the service Dockerfiles agree with each other and stay secret-free."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
PROMETHEUS = ROOT / "grafana-prometheus" / "prometheus" / "prometheus.yml"
DASHBOARD_PROVIDER = (
    ROOT / "grafana-prometheus" / "grafana" / "provisioning" / "dashboards" / "dashboards.yml"
)


def _readme_services() -> tuple[str, ...]:
    """Return the service names of the README's compose table (its first column)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## `docker compose up --build`", 1)[1].split("\n## ", 1)[0]
    return tuple(re.findall(r"^\| `([a-z-]+)` \|", section, flags=re.M))


# The services the README documents for `docker compose up`.
SERVICES = _readme_services()
SCALABLE = ("admin-consumer", "admin-relay", "main-consumer", "main-relay")
# (compose service, Dockerfile, port, health path); the ports are the defaults in README: Configuration.
WEB = (
    ("admin", ROOT / "admin" / "Dockerfile", 8000, "/api/health"),
    ("main", ROOT / "main" / "Dockerfile", 5000, "/flask/api/health"),
)
METRICS_PORTS = {
    "admin-consumer": 9801,
    "admin-relay": 9802,
    "main-consumer": 9811,
    "main-relay": 9812,
}
SECRET_KEY_RE = re.compile(r"(PASSWORD|PASS|SECRET|TOKEN|_KEY)$")
REQUIRED_REF_RE = re.compile(r"^\$\{[A-Z0-9_]+:\?[^}]+\}$")


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _env_example() -> dict[str, str]:
    pairs = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value
    return pairs


def _docker_compose(*args: str, env_file: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("docker-compose")
    assert exe, "docker-compose not installed: apt-get install docker-compose"
    # Variables of the calling shell would win over the env file; keep only what compose needs.
    env = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "LC_ALL"}}
    return subprocess.run(
        [exe, "-f", str(COMPOSE), "--env-file", str(env_file), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_compose_file_validates_with_the_example_env():
    result = _docker_compose("config", "-q", env_file=ENV_EXAMPLE)
    assert result.returncode == 0, result.stderr


def test_a_missing_secret_stops_compose_with_a_clear_message(tmp_path):
    env_file = tmp_path / "env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in _env_example().items() if k != "ADMIN_DB_PASSWORD"))
    result = _docker_compose("config", "-q", env_file=env_file)
    assert result.returncode != 0
    assert "set ADMIN_DB_PASSWORD in .env" in result.stderr


def test_no_version_key_and_every_documented_service_present():
    compose = _compose()
    assert "version" not in compose
    assert set(compose["services"]) == set(SERVICES)


@pytest.mark.parametrize("name", SERVICES)
def test_service_has_healthcheck_and_restart_policy(name):
    service = _compose()["services"][name]
    assert service["restart"] == "unless-stopped"
    check = service["healthcheck"]
    assert check["test"][0] in {"CMD", "CMD-SHELL"} and check["retries"] >= 3


def test_dependencies_wait_for_healthy_services():
    services = _compose()["services"]
    for name, service in services.items():
        for dep, spec in (service.get("depends_on") or {}).items():
            assert spec == {"condition": "service_healthy"}, (name, dep)
            assert "healthcheck" in services[dep], (name, dep)


@pytest.mark.parametrize("name", SCALABLE)
def test_consumers_and_relays_can_scale(name):
    service = _compose()["services"][name]
    assert "container_name" not in service and "ports" not in service
    port = METRICS_PORTS[name]
    assert service["environment"]["METRICS_PORT"] == str(port)
    assert f"127.0.0.1:{port}/metrics" in " ".join(service["healthcheck"]["test"])


def test_prometheus_scrapes_the_ports_compose_exposes():
    jobs = {job["job_name"]: job for job in yaml.safe_load(PROMETHEUS.read_text())["scrape_configs"]}
    services = _compose()["services"]
    for name, port in [*METRICS_PORTS.items(), ("admin", 8000), ("main", 5000)]:
        job = jobs[f"{name}-web" if name in {"admin", "main"} else name]
        (sd,) = job["dns_sd_configs"]
        assert sd["names"] == [name] and sd["port"] == port, name
        assert str(port) in services[name]["expose"], name
    assert jobs["rabbitmq"]["static_configs"][0]["targets"] == ["rabbitmq:15692"]
    assert jobs["node-exporter"]["static_configs"][0]["targets"] == ["node-exporter:9100"]


@pytest.mark.parametrize(("name", "dockerfile", "port", "health"), WEB)
def test_dockerfile_matches_compose_port_and_healthcheck(name, dockerfile, port, health):
    text = dockerfile.read_text()
    service = _compose()["services"][name]
    assert re.search(rf"^EXPOSE {port}$", text, re.MULTILINE)
    assert re.search(rf"^HEALTHCHECK .*\n.*{re.escape(health)}", text, re.MULTILINE)
    assert f"http://127.0.0.1:{port}{health}" in " ".join(service["healthcheck"]["test"])
    assert service["expose"] == [str(port)] and service["environment"]["PORT"] == str(port)
    # The repository root, so the image can install the shared messaging core (lib/eventbus).
    assert service["build"] == {"context": ".", "dockerfile": f"{name}/Dockerfile"}


@pytest.mark.parametrize(("name", "dockerfile", "port", "health"), WEB)
def test_dockerfile_is_multi_stage_pinned_and_non_root(name, dockerfile, port, health):
    text = dockerfile.read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11\.\d+-slim-\w+$", text, re.MULTILINE)
    assert len(re.findall(r"^FROM ", text, re.MULTILINE)) == 2
    users = re.findall(r"^USER (\S+)$", text, re.MULTILINE)
    assert users and users[-1] not in {"root", "0"}
    assert 'ENTRYPOINT ["/app/docker-entrypoint.sh"]' in text
    assert re.search(r'^CMD \["gunicorn", "-c", "gunicorn.conf.py"', text, re.MULTILINE)
    assert f"COPY {name}/ ." in text and "COPY lib/eventbus" in text
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert {"*", f"!{name}", "!lib/eventbus", "**/tests"} <= set(ignored)


def test_compose_commands_are_the_spec_process_commands():
    services = _compose()["services"]
    assert services["admin-consumer"]["command"] == ["python", "manage.py", "consume"]
    assert services["admin-relay"]["command"] == ["python", "manage.py", "relay_outbox"]
    assert services["main-consumer"]["command"] == ["flask", "--app", "app", "consume"]
    assert services["main-relay"]["command"] == [
        "flask",
        "--app",
        "app",
        "relay-outbox",
    ]


def test_no_credential_literal_in_the_compose_file():
    for name, service in _compose()["services"].items():
        for key, value in (service.get("environment") or {}).items():
            value = str(value)
            if SECRET_KEY_RE.search(key):
                assert REQUIRED_REF_RE.match(value), f"{name}.{key} must be ${{VAR:?message}}"
            for password in re.findall(r"://[^:/@\s]+:([^@\s]+)@", value):
                assert REQUIRED_REF_RE.match(password), f"{name}.{key}: password in URL must come from .env"
    assert "guest" not in COMPOSE.read_text()


def test_every_compose_variable_is_listed_in_env_example():
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE.read_text()))
    listed = _env_example()
    assert used - set(listed) == set()
    for key, value in listed.items():
        assert "#" not in value, f"{key}: put comments on their own line"
        if SECRET_KEY_RE.search(key):
            assert value.startswith("change-me"), f"{key} must be a placeholder"


def test_bind_mounted_files_exist_and_grafana_loads_the_dashboards():
    services = _compose()["services"]
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), (name, source)
    provider_path = yaml.safe_load(DASHBOARD_PROVIDER.read_text())["providers"][0]["options"]["path"]
    mounts = {v.split(":")[0]: v.split(":")[1] for v in services["grafana"]["volumes"]}
    assert mounts["./grafana-prometheus/grafana/dashboards"] == provider_path
    assert mounts["./grafana-prometheus/grafana/provisioning"] == "/etc/grafana/provisioning"


def test_services_export_traces_to_jaeger():
    services = _compose()["services"]
    for name in (
        "admin",
        "admin-consumer",
        "admin-relay",
        "main",
        "main-consumer",
        "main-relay",
    ):
        assert services[name]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318"
        assert services[name]["environment"]["APP_ENV"] == "production"


def _resolved() -> dict:
    """Return the compose file as docker-compose resolves it with the example env (anchors merged)."""
    result = _docker_compose("config", env_file=ENV_EXAMPLE)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)["services"]


# Third-party servers whose entrypoints chown their data directory as root, then drop to their user.
ROOT_ENTRYPOINT = {"redis", "rabbitmq", "mysql-admin", "mysql-main"}
ENTRYPOINT_CAPS = {"CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"}


@pytest.mark.parametrize("name", SERVICES)
def test_every_container_is_hardened_and_limited(name):
    service = _resolved()[name]
    assert service.get("cap_drop") == ["ALL"], f"{name} keeps Docker's default capabilities"
    assert "no-new-privileges:true" in service.get("security_opt", []), name
    assert service.get("mem_limit") and service.get("cpus"), f"{name} can starve its neighbours"
    if name in ROOT_ENTRYPOINT:
        assert set(service.get("cap_add", [])) <= ENTRYPOINT_CAPS, name
    else:
        assert not service.get("cap_add"), name
        assert service.get("read_only") is True, f"{name} has a writable root file system"
        assert "/tmp" in service.get("tmpfs", []), f"{name}: read-only needs a tmpfs for scratch files"


def test_app_images_name_a_release_never_latest(tmp_path):
    services = _resolved()
    images = {service["image"] for service in services.values()}
    assert not [image for image in images if image.endswith(":latest") or ":" not in image.split("/")[-1]]
    env_file = tmp_path / "env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in _env_example().items() if k != "IMAGE_TAG"))
    result = _docker_compose("config", "-q", env_file=env_file)
    assert result.returncode != 0
    assert "set IMAGE_TAG" in result.stderr
