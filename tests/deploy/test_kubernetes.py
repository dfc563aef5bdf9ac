"""deploy/k8s renders, validates and keeps the promises of its README and of docker-compose.yml, offline.

`kubectl kustomize` renders each overlay. Core objects are validated against Kubernetes 1.32's own
schemas (kubernetes-validate's bundled copy, strict: an unknown field fails); the operators' kinds,
whose schemas only a cluster with the operators holds, get the shape checks written here. Then
the policies: hardened, probed and limited containers, pinned images, autoscaling, network flows
(README: Network flows), the broker objects against eventbus.topology, secrets and scrape jobs.
"""

from __future__ import annotations

import functools
import importlib.util
import ipaddress
import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "production")
NAMESPACE = "microservices"
KUBERNETES_VERSION = "1.32"
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
PROMETHEUS = yaml.safe_load((ROOT / "grafana-prometheus" / "prometheus" / "prometheus.yml").read_text())
DASHBOARDS = ROOT / "grafana-prometheus" / "grafana" / "dashboards"
PROVISION_USERS = ROOT / "grafana-prometheus" / "rabbitmq" / "provision-users.sh"
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job")
# Each process and the compose service that runs it.
COMPOSE_NAME = {
    "admin-web": "admin",
    "admin-consumer": "admin-consumer",
    "admin-relay": "admin-relay",
    "drift-check": "drift-check",
    "main-web": "main",
    "main-consumer": "main-consumer",
    "main-relay": "main-relay",
    "frontend": "frontend",
    "redis": "redis",
    "mysql-admin": "mysql-admin",
    "mysql-main": "mysql-main",
}
# Compose settings these manifests leave out on purpose, and why.
NOT_IN_KUBERNETES = {
    "OTEL_EXPORTER_OTLP_ENDPOINT": "no tracing backend is deployed here; an overlay adds one",
    "DB_SECRET_NAME": "External Secrets writes the credentials into DATABASE_URL",  # pragma: allowlist secret
    "AWS_REGION": "External Secrets, not the services, reads AWS Secrets Manager",
    "ADMIN_USERNAME": "only the admin-migrate Job creates the superuser",
    "ADMIN_PASSWORD": "only the admin-migrate Job creates the superuser",  # pragma: allowlist secret
    "ADMIN_EMAIL": "only the admin-migrate Job creates the superuser",
}


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_topology = _load("k8s_build_topology", K8S / "build_topology.py")
TOPOLOGIES = {topology.service: topology for topology in build_topology.load_topologies()}


@functools.cache
def _render(overlay: str) -> tuple[dict, ...]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl not installed: apt-get install kubernetes-client"
    result = subprocess.run(
        [kubectl, "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def _objects(overlay: str, *kinds: str) -> list[dict]:
    return [obj for obj in _render(overlay) if not kinds or obj["kind"] in kinds]


def _one(overlay: str, kind: str, name: str) -> dict:
    found = [obj for obj in _objects(overlay, kind) if obj["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def _pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def _pod_labels(workload: dict) -> dict:
    return workload["spec"]["template"]["metadata"]["labels"]


def _containers(workload: dict, init: bool = True) -> list[dict]:
    spec = _pod_spec(workload)
    return [*(spec.get("initContainers") or [] if init else []), *spec["containers"]]


def _selects(selector: dict | None, labels: dict) -> bool:
    """Return whether a label selector (matchLabels, matchExpressions) selects these labels."""
    selector = selector or {}
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        if {
            "In": labels.get(key) not in values,
            "NotIn": labels.get(key) in values,
            "Exists": key not in labels,
            "DoesNotExist": key in labels,
        }[operator]:
            return False
    return True


def _env(overlay: str, container: dict) -> dict[str, str]:
    """Return the container's environment as Kubernetes builds it: envFrom first, then env."""
    env = {}
    for source in container.get("envFrom") or []:
        if "configMapRef" in source:
            env.update(_one(overlay, "ConfigMap", source["configMapRef"]["name"])["data"])
        else:
            env.update(dict.fromkeys(_secret_keys(overlay, source["secretRef"]["name"]), "<secret>"))
    for var in container.get("env") or []:
        env[var["name"]] = var.get("value", "<from>")
    return env


def _secret_keys(overlay: str, name: str) -> set[str]:
    """Return the keys of a Secret: a plain one (dev) or the one an ExternalSecret writes (production)."""
    for secret in _objects(overlay, "Secret"):
        if secret["metadata"]["name"] == name:
            return set(secret.get("stringData") or {}) | set(secret.get("data") or {})
    for external in _objects(overlay, "ExternalSecret"):
        if external["spec"]["target"]["name"] == name:
            return set(external["spec"]["target"]["template"]["data"])
    raise AssertionError(f"no Secret {name} in overlay {overlay}")


# ----- rendering and schemas ----------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_renders_into_one_namespace(overlay):
    objects = _render(overlay)
    assert len(objects) > 50
    for obj in objects:
        expected = None if obj["kind"] == "Namespace" else NAMESPACE
        assert obj["metadata"].get("namespace") == expected, (obj["kind"], obj["metadata"]["name"])
    assert (
        _one(overlay, "Namespace", NAMESPACE)["metadata"]["labels"]["pod-security.kubernetes.io/warn"]
        == "restricted"
    )


# The operators' kinds: no bundled schema, so their shape is checked here. A shape is a type, a
# tuple of allowed strings, [item shape], {key: shape} (a key ending in "!" is required, any other
# key is refused) or {str: shape} (a map with any keys).
CLUSTER_REF = {"name": str, "namespace": str, "connectionSecret": {"name": str}}
LABEL_SELECTOR = {"matchLabels": {str: str}, "matchExpressions": list}
SHAPES = {
    ("rabbitmq.com/v1beta1", "RabbitmqCluster"): {
        "replicas!": int,
        "image!": str,
        "resources!": {"requests!": {str: str}, "limits!": {str: str}},
        "persistence": {"storage": str, "storageClassName": str},
        "affinity": dict,
        "override": {"statefulSet": dict, "clientService": dict},
        "rabbitmq": {
            "additionalPlugins": [str],
            "additionalConfig": str,
            "advancedConfig": str,
            "envConfig": str,
        },
    },
    ("rabbitmq.com/v1beta1", "Exchange"): {
        "name!": str,
        "vhost!": str,
        "type!": ("direct", "fanout", "topic", "headers"),
        "durable": bool,
        "autoDelete": bool,
        "arguments": dict,
        "rabbitmqClusterReference!": CLUSTER_REF,
    },
    ("rabbitmq.com/v1beta1", "Queue"): {
        "name!": str,
        "vhost!": str,
        "type!": ("quorum", "classic", "stream"),
        "durable": bool,
        "autoDelete": bool,
        "deleteIfEmpty": bool,
        "deleteIfUnused": bool,
        "arguments": {str: (str, int)},
        "rabbitmqClusterReference!": CLUSTER_REF,
    },
    ("rabbitmq.com/v1beta1", "Binding"): {
        "vhost!": str,
        "source!": str,
        "destination!": str,
        "destinationType!": ("queue", "exchange"),
        "routingKey!": str,
        "arguments": dict,
        "rabbitmqClusterReference!": CLUSTER_REF,
    },
    ("rabbitmq.com/v1beta1", "Policy"): {
        "name!": str,
        "vhost!": str,
        "pattern!": str,
        "applyTo": ("queues", "classic_queues", "quorum_queues", "exchanges", "all"),
        "priority": int,
        "definition!": dict,
        "rabbitmqClusterReference!": CLUSTER_REF,
    },
    ("rabbitmq.com/v1beta1", "User"): {
        "tags": [("management", "policymaker", "monitoring", "administrator")],
        "importCredentialsSecret!": {"name!": str},
        "rabbitmqClusterReference!": CLUSTER_REF,
    },
    ("rabbitmq.com/v1beta1", "Permission"): {
        "vhost!": str,
        "userReference!": {"name!": str},
        "permissions!": {"configure!": str, "write!": str, "read!": str},
        "rabbitmqClusterReference!": CLUSTER_REF,
    },
    ("keda.sh/v1alpha1", "ScaledObject"): {
        "scaleTargetRef!": {"name!": str, "kind": str, "apiVersion": str},
        "minReplicaCount": int,
        "maxReplicaCount": int,
        "pollingInterval": int,
        "cooldownPeriod": int,
        "triggers!": [
            {
                "type!": str,
                # KEDA reads trigger metadata as strings only.
                "metadata!": {str: str},
                "authenticationRef": {
                    "name!": str,
                    "kind": ("TriggerAuthentication", "ClusterTriggerAuthentication"),
                },
            }
        ],
    },
    ("keda.sh/v1alpha1", "TriggerAuthentication"): {
        "secretTargetRef!": [{"parameter!": str, "name!": str, "key!": str}],
    },
    ("external-secrets.io/v1", "ExternalSecret"): {
        "refreshInterval": str,
        "secretStoreRef!": {"name!": str, "kind!": ("SecretStore", "ClusterSecretStore")},
        "target!": {
            "name!": str,
            "creationPolicy": ("Owner", "Orphan", "Merge", "None"),
            "template": {"engineVersion": ("v2",), "type": str, "data!": {str: str}},
        },
        "dataFrom!": [{"extract!": {"key!": str}}],
    },
    ("monitoring.coreos.com/v1", "ServiceMonitor"): {
        "selector!": LABEL_SELECTOR,
        "namespaceSelector": dict,
        "jobLabel": str,
        "endpoints!": [
            {
                "port!": str,
                "path": str,
                "interval": str,
                "scheme": ("http", "https"),
                "relabelings": [
                    {
                        "action": ("replace", "keep", "drop", "labelmap", "labeldrop", "labelkeep"),
                        "sourceLabels": [str],
                        "targetLabel": str,
                        "replacement": str,
                        "regex": str,
                    }
                ],
            }
        ],
    },
}


def _shape_errors(value, shape, path: str) -> list[str]:
    if isinstance(shape, type):
        ok = isinstance(value, shape) and not (shape is int and isinstance(value, bool))
        return [] if ok else [f"{path}: {value!r} is not {shape.__name__}"]
    if isinstance(shape, tuple) and all(isinstance(s, type) for s in shape):
        return [] if isinstance(value, shape) else [f"{path}: {value!r} is not one of {shape}"]
    if isinstance(shape, tuple):
        return [] if value in shape else [f"{path}: {value!r} is not one of {shape}"]
    if isinstance(shape, list):
        if not isinstance(value, list) or not value:
            return [f"{path}: expected a non-empty list"]
        return [e for i, item in enumerate(value) for e in _shape_errors(item, shape[0], f"{path}[{i}]")]
    if not isinstance(value, dict):
        return [f"{path}: expected a mapping"]
    if set(shape) == {str}:
        return [e for key, item in value.items() for e in _shape_errors(item, shape[str], f"{path}.{key}")]
    fields = {key.rstrip("!"): sub for key, sub in shape.items()}
    errors = [
        f"{path}.{key[:-1]} is required" for key in shape if key.endswith("!") and key[:-1] not in value
    ]
    errors += [f"{path}.{key} is not a field of this kind" for key in value if key not in fields]
    for key, item in value.items():
        if key in fields:
            errors += _shape_errors(item, fields[key], f"{path}.{key}")
    return errors


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_validates_against_its_schema(overlay):
    errors = []
    for obj in _render(overlay):
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        shape = SHAPES.get((obj["apiVersion"], obj["kind"]))
        if shape is not None:
            errors += [f"{where}: {e}" for e in _shape_errors(obj.get("spec"), shape, "spec")]
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            errors.append(f"{where}: {obj['apiVersion']} has neither a bundled schema nor a shape here")
        except kubernetes_validate.ValidationError as error:
            errors.append(f"{where}: {'.'.join(map(str, error.path))}: {error.message}")
    assert not errors, "\n".join(errors)


# ----- containers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_is_probed_limited_and_hardened(overlay):
    problems = []
    for workload in _objects(overlay, *WORKLOAD_KINDS):
        pod = _pod_spec(workload)
        pod_context = pod.get("securityContext") or {}
        if pod.get("automountServiceAccountToken") is not False:
            problems.append(f"{workload['metadata']['name']}: mounts an API token it never uses")
        if (pod_context.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
            problems.append(f"{workload['metadata']['name']}: no RuntimeDefault seccomp profile")
        mounts_tmp = {}
        for container in _containers(workload):
            where = f"{workload['kind']}/{workload['metadata']['name']}/{container['name']}"
            context = {**pod_context, **(container.get("securityContext") or {})}
            if context.get("runAsNonRoot") is not True:
                problems.append(f"{where}: runAsNonRoot is not true")
            if not isinstance(context.get("runAsUser"), int) or context["runAsUser"] == 0:
                problems.append(f"{where}: no numeric non-root runAsUser")
            if context.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: writable root file system")
            if context.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation is not false")
            if (context.get("capabilities") or {}).get("drop") != ["ALL"]:
                problems.append(f"{where}: keeps Linux capabilities")
            resources = container.get("resources") or {}
            for bound in ("requests", "limits"):
                if set(resources.get(bound) or {}) < {"cpu", "memory"}:
                    problems.append(f"{where}: no cpu and memory {bound}")
            mounts_tmp[container["name"]] = any(
                m["mountPath"] == "/tmp" for m in container.get("volumeMounts") or []
            )
        for container in _containers(workload, init=False):
            if not mounts_tmp[container["name"]]:
                problems.append(f"{workload['metadata']['name']}/{container['name']}: no writable /tmp")
            if workload["kind"] == "Job":
                continue
            ports = {p["name"] for p in container.get("ports") or []}
            for probe in ("readinessProbe", "livenessProbe"):
                spec = container.get(probe)
                if not spec:
                    problems.append(f"{workload['metadata']['name']}/{container['name']}: no {probe}")
                elif "httpGet" in spec and spec["httpGet"]["port"] not in ports:
                    problems.append(f"{workload['metadata']['name']}: {probe} names an unknown port")
        volumes = {v["name"]: v for v in pod.get("volumes") or []}
        for container in _containers(workload):
            for mount in container.get("volumeMounts") or []:
                if mount["mountPath"] == "/tmp" and "emptyDir" not in volumes.get(mount["name"], {}):
                    problems.append(f"{workload['metadata']['name']}: /tmp is not an emptyDir")
    assert not problems, "\n".join(problems)


def _images(overlay: str) -> set[str]:
    images = {c["image"] for w in _objects(overlay, *WORKLOAD_KINDS) for c in _containers(w)}
    return images | {cluster["spec"]["image"] for cluster in _objects(overlay, "RabbitmqCluster")}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_images_name_a_release_never_latest(overlay):
    for image in _images(overlay):
        name, _, tag = image.rpartition(":")
        assert name and "/" not in tag and tag and tag != "latest", f"{image} names no release"
    ours = {image for image in _images(overlay) if "microservices/" in image}
    registry, tag = {
        "dev": ("localhost/microservices", "dev"),
        # The deploy step writes the release over this placeholder (overlays/production/kustomization.yaml).
        "production": ("registry.example.com/microservices", "IMAGE_TAG"),
    }[overlay]
    assert ours == {f"{registry}/{name}:{tag}" for name in ("admin", "main", "frontend")}
    # Third-party servers run the release docker-compose.yml runs.
    assert _images(overlay) - ours == {
        COMPOSE[name]["image"] for name in ("redis", "mysql-admin", "rabbitmq")
    }


def _image_cmd(dockerfile: Path) -> list[str]:
    return json.loads(re.search(r"^CMD (\[.*\])$", dockerfile.read_text(), re.M).group(1))


@pytest.mark.parametrize("name", COMPOSE_NAME)
def test_every_process_runs_and_is_probed_as_in_compose(name):
    service = COMPOSE[COMPOSE_NAME[name]]
    workload = next(w for w in _objects("dev", "Deployment", "StatefulSet") if w["metadata"]["name"] == name)
    container = _containers(workload, init=False)[0]
    if name in ("admin-web", "main-web"):
        command = _image_cmd(ROOT / name.removesuffix("-web") / "Dockerfile")
    else:
        command = [arg.replace("http://main:", "http://main-web:") for arg in service.get("command", [])]
    args = [a for a in container.get("args", []) if not a.startswith("--datadir=")]
    assert args == command
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    test = service["healthcheck"]["test"]
    probe = container["livenessProbe"]
    url = re.search(r"http://127\.0\.0\.1:(\d+)(/\S*?)['\s]", " ".join(test) + " ")
    if name == "frontend":  # compose asks for "/", the image's own HEALTHCHECK for /healthz
        assert f"127.0.0.1:8080{probe['httpGet']['path']}" in (ROOT / "frontend" / "Dockerfile").read_text()
    elif url:
        assert (ports[probe["httpGet"]["port"]], probe["httpGet"]["path"]) == (int(url[1]), url[2])
    elif test[0] == "CMD-SHELL":
        assert probe["exec"]["command"] == ["sh", "-c", test[1].replace("$$", "$")]
    else:
        assert probe["exec"]["command"] == test[1:]
    env = _env("dev", container)
    compose_env = service.get("environment") or {}
    missing = set(compose_env) - set(env) - set(NOT_IN_KUBERNETES)
    assert not missing, f"{name} lacks compose's {sorted(missing)}"
    for key in ("METRICS_PORT", "PORT", "OTEL_SERVICE_NAME", "MYSQL_DATABASE", "MYSQL_USER"):
        if key in compose_env and "${" not in str(compose_env[key]):
            assert env[key] == str(compose_env[key]), (name, key)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_migrations_run_in_a_job_and_every_process_waits_for_them(overlay):
    for entrypoint in (ROOT / "admin" / "docker-entrypoint.sh", ROOT / "main" / "docker-entrypoint.sh"):
        # The images migrate at a gunicorn start unless told not to (compose relies on that).
        assert 'RUN_MIGRATIONS="${RUN_MIGRATIONS:-auto}"' in entrypoint.read_text()
    jobs = {job["metadata"]["name"]: _containers(job)[0]["args"] for job in _objects(overlay, "Job")}
    assert "manage.py migrate --noinput" in " ".join(jobs.pop("admin-migrate"))
    assert jobs.pop("main-migrate") == ["flask", "--app", "app", "db", "upgrade"]
    assert not jobs
    for workload in _objects(overlay, *WORKLOAD_KINDS):
        ours = [c for c in _containers(workload) if re.search(r"/microservices/(admin|main):", c["image"])]
        for container in ours:
            assert _env(overlay, container).get("RUN_MIGRATIONS") == "0", workload["metadata"]["name"]
        if ours and workload["kind"] == "Deployment":
            init = [c["name"] for c in _pod_spec(workload).get("initContainers") or []]
            assert init == ["wait-for-migrations"], workload["metadata"]["name"]


def test_django_allows_the_pod_ip_that_probes_and_prometheus_use():
    container = _containers(_one("dev", "Deployment", "admin-web"), init=False)[0]
    env = [var["name"] for var in container["env"]]
    hosts = next(var["value"] for var in container["env"] if var["name"] == "ALLOWED_HOSTS")
    pod_ip = next(var for var in container["env"] if var["name"] == "POD_IP")
    assert pod_ip["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    assert env.index("POD_IP") < env.index("ALLOWED_HOSTS")  # $(VAR) sees only what comes before
    assert hosts.split(",") == ["$(ALLOWED_HOSTS)", "$(POD_IP)"]
    assert _one("dev", "ConfigMap", "admin-config")["data"]["ALLOWED_HOSTS"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_frontend_proxies_to_the_web_services_by_their_full_names(overlay):
    data = _one(overlay, "ConfigMap", "frontend-config")["data"]
    for key, service in (("ADMIN_UPSTREAM", "admin-web"), ("MAIN_UPSTREAM", "main-web")):
        host, _, port = data[key].rpartition(":")
        svc = _one(overlay, "Service", service)
        assert host == f"{service}.{svc['metadata']['namespace']}.svc.cluster.local"
        assert int(port) in {p["port"] for p in svc["spec"]["ports"]}


# ----- scaling -----------------------------------------------------------------------------------------


def _deployments(overlay: str, component: str) -> list[dict]:
    return [
        d
        for d in _objects(overlay, "Deployment")
        if d["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component") == component
    ]


def _has_pdb(overlay: str, workload: dict) -> bool:
    return any(
        _selects(pdb["spec"]["selector"], _pod_labels(workload))
        for pdb in _objects(overlay, "PodDisruptionBudget")
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_web_scales_on_cpu_and_keeps_a_disruption_budget(overlay):
    webs = _deployments(overlay, "web")
    assert {w["metadata"]["name"] for w in webs} == {"admin-web", "main-web", "frontend"}
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in _objects(overlay, "HorizontalPodAutoscaler")}
    for web in webs:
        name = web["metadata"]["name"]
        hpa = hpas.pop(name, None)
        assert hpa and hpa["apiVersion"] == "autoscaling/v2", f"{name} has no HorizontalPodAutoscaler"
        assert hpa["spec"]["minReplicas"] >= 2
        assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
        assert "replicas" not in web["spec"], f"{name}: apply would reset what the autoscaler chose"
        assert _has_pdb(overlay, web), f"{name} has no PodDisruptionBudget"
    assert not hpas, f"HPAs on what is not a web: {sorted(hpas)}"
    for relay in _deployments(overlay, "relay"):
        assert relay["spec"]["replicas"] == 2 and _has_pdb(overlay, relay)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_consumer_scales_on_its_queue_depth_with_keda(overlay):
    consumers = _deployments(overlay, "consumer")
    assert {c["metadata"]["name"] for c in consumers} == {"admin-consumer", "main-consumer"}
    scaled = {s["spec"]["scaleTargetRef"]["name"]: s for s in _objects(overlay, "ScaledObject")}
    auths = {a["metadata"]["name"]: a for a in _objects(overlay, "TriggerAuthentication")}
    for consumer in consumers:
        name = consumer["metadata"]["name"]
        service = name.removesuffix("-consumer")
        scaled_object = scaled.pop(name, None)
        assert scaled_object, f"{name} has no ScaledObject"
        assert scaled_object["spec"]["minReplicaCount"] >= 1  # its heartbeat and consumer_up expect one
        (trigger,) = scaled_object["spec"]["triggers"]
        assert trigger["type"] == "rabbitmq"
        assert trigger["metadata"]["queueName"] == TOPOLOGIES[service].queue
        (ref,) = auths[trigger["authenticationRef"]["name"]]["spec"]["secretTargetRef"]
        assert ref["parameter"] == "host" and ref["key"] == "RABBITMQ_URL"
        assert ref["key"] in _secret_keys(overlay, ref["name"])
        assert "replicas" not in consumer["spec"]
        assert _has_pdb(overlay, consumer)
    assert not scaled


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_broker_has_three_nodes_and_one_database_per_service(overlay):
    (cluster,) = _objects(overlay, "RabbitmqCluster")
    assert cluster["spec"]["replicas"] == 3
    assert any(
        pdb["spec"].get("maxUnavailable") == 1
        for pdb in _objects(overlay, "PodDisruptionBudget")
        if _selects(pdb["spec"]["selector"], {"app.kubernetes.io/name": cluster["metadata"]["name"]})
    )
    databases = {s["metadata"]["name"]: s for s in _objects(overlay, "StatefulSet")}
    assert set(databases) == {"mysql-admin", "mysql-main"}
    for name, database in databases.items():
        assert database["spec"]["replicas"] == 1 and database["spec"]["volumeClaimTemplates"]
        assert _one(overlay, "Service", name)["spec"]["clusterIP"] == "None"


# ----- network policies ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    """A pod that sends or receives: ours (namespace microservices) or a neighbour's."""

    name: str
    namespace: str | None  # None: an address outside the cluster
    labels: tuple
    ports: frozenset  # (port, protocol) it listens on
    ip: str = "10.1.2.3"


# The neighbours the README names (README: Network flows), as their usual charts label them.
NEIGHBOURS = (
    Actor("prometheus", "monitoring", (("app.kubernetes.io/name", "prometheus"),), frozenset()),
    Actor("keda", "keda", (("app", "keda-operator"),), frozenset()),
    Actor(
        "rabbitmq-operators",
        "rabbitmq-system",
        (("app.kubernetes.io/name", "messaging-topology-operator"),),
        frozenset(),
    ),
    Actor("kube-dns", "kube-system", (("k8s-app", "kube-dns"),), frozenset({(53, "UDP"), (53, "TCP")})),
    Actor("kubernetes-api", None, (), frozenset({(443, "TCP"), (6443, "TCP")}), ip="172.20.0.1"),
    Actor("anywhere", None, (), frozenset(), ip="203.0.113.7"),
)
# The broker's pods, as the RabbitMQ Cluster Operator labels them and the ports they listen on.
RABBITMQ_PORTS = frozenset(
    {(5672, "TCP"), (15672, "TCP"), (15692, "TCP"), (4369, "TCP"), (25672, "TCP")}
    | {(p, "TCP") for p in range(35672, 35683)}
)


def _actors(overlay: str) -> list[Actor]:
    actors = list(NEIGHBOURS)
    for workload in _objects(overlay, *WORKLOAD_KINDS):
        ports = frozenset(
            (p["containerPort"], p.get("protocol", "TCP"))
            for c in _containers(workload)
            for p in c.get("ports") or []
        )
        actors.append(
            Actor(workload["metadata"]["name"], NAMESPACE, tuple(_pod_labels(workload).items()), ports)
        )
    for cluster in _objects(overlay, "RabbitmqCluster"):
        labels = (
            ("app.kubernetes.io/name", cluster["metadata"]["name"]),
            ("app.kubernetes.io/component", "rabbitmq"),
        )
        actors.append(Actor(cluster["metadata"]["name"], NAMESPACE, labels, RABBITMQ_PORTS))
    return actors


def _peer_matches(peer: dict, actor: Actor) -> bool:
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        address = ipaddress.ip_address(actor.ip)
        return (
            actor.namespace is None
            and address in ipaddress.ip_network(block["cidr"])
            and not any(address in ipaddress.ip_network(e) for e in block.get("except") or [])
        )
    if actor.namespace is None:
        return False
    if "namespaceSelector" in peer:
        in_namespace = _selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": actor.namespace})
    else:
        in_namespace = actor.namespace == NAMESPACE
    return in_namespace and _selects(peer.get("podSelector"), dict(actor.labels))


def _port_matches(rule_ports: list | None, port: int, protocol: str) -> bool:
    if not rule_ports:
        return True
    return any(
        p.get("protocol", "TCP") == protocol
        and ("port" not in p or p["port"] <= port <= p.get("endPort", p["port"]))
        for p in rule_ports
    )


def _allows(
    policies: list[dict], actor: Actor, direction: str, other: Actor, port: int, protocol: str
) -> bool:
    """Return whether the policies let `actor` send (egress) to or receive (ingress) from `other`."""
    if actor.namespace != NAMESPACE:
        return True  # a neighbour's own policies are not ours to read
    kind = direction.capitalize()
    selecting = [
        p
        for p in policies
        if kind in p["spec"].get("policyTypes", ["Ingress"])
        and _selects(p["spec"]["podSelector"], dict(actor.labels))
    ]
    if not selecting:
        return True
    peers_key = "from" if direction == "ingress" else "to"
    return any(
        (not rule.get(peers_key) or any(_peer_matches(peer, other) for peer in rule[peers_key]))
        and _port_matches(rule.get("ports"), port, protocol)
        for policy in selecting
        for rule in policy["spec"].get(direction) or []
    )


def _allowed_flows(overlay: str) -> set[tuple[str, str, str]]:
    policies = _objects(overlay, "NetworkPolicy")
    actors = _actors(overlay)
    return {
        (src.name, dst.name, f"{port}/{protocol}")
        for src in actors
        for dst in actors
        for port, protocol in dst.ports
        if NAMESPACE in (src.namespace, dst.namespace)  # between neighbours: not ours to say
        and _allows(policies, src, "egress", dst, port, protocol)
        and _allows(policies, dst, "ingress", src, port, protocol)
    }


def _documented_flows(overlay: str) -> set[tuple[str, str, str]]:
    """Return the flows of the README's table: `anywhere` is every neighbour, `every pod` each of ours."""
    text = (K8S / "README.md").read_text()
    section = text.split("## Network flows", 1)[1].split("\n## ", 1)[0]
    ours = [a.name for a in _actors(overlay) if a.namespace == NAMESPACE]
    aliases = {"anywhere": [a.name for a in NEIGHBOURS], "every pod": ours}
    flows = set()
    for row in re.findall(r"^\| (.+?) \| (.+?) \| (.+?) \|$", section, flags=re.M):
        if row[0] == "from":
            continue
        sources, destinations, ports = ([x.strip(" `") for x in cell.split(",")] for cell in row)
        for port in ports:
            number, protocol = port.split("/")
            first, _, last = number.partition("-")
            for n in range(int(first), int(last or first) + 1):
                for src in (s for name in sources for s in aliases.get(name, [name])):
                    for dst in destinations:
                        flows.add((src, dst, f"{n}/{protocol}"))
    return flows


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_allow_exactly_the_documented_flows(overlay):
    allowed, documented = _allowed_flows(overlay), _documented_flows(overlay)
    assert allowed - documented == set(), "allowed, but not in the README"
    assert documented - allowed == set(), "in the README, but denied"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_workload_has_a_network_policy_of_its_own(overlay):
    policies = [p for p in _objects(overlay, "NetworkPolicy") if p["spec"]["podSelector"]]
    assert any(p["spec"]["podSelector"] == {} for p in _objects(overlay, "NetworkPolicy")), "no default deny"
    for actor in _actors(overlay):
        if actor.namespace == NAMESPACE:
            assert any(_selects(p["spec"]["podSelector"], dict(actor.labels)) for p in policies), actor.name


# ----- the broker's objects come from eventbus.topology --------------------------------------------


def test_the_committed_broker_yaml_is_what_the_generator_writes():
    assert build_topology.OUT.read_text() == build_topology.render(), (
        "run .venv/bin/python deploy/k8s/build_topology.py"
    )


def _alternatives(regex: str) -> set[str]:
    match = re.fullmatch(r"\^\((.*)\)\$", regex)
    assert match, regex
    return {name.replace("\\.", ".") for name in match[1].split("|")}


def _compose_permissions() -> dict[str, tuple[set[str], ...]]:
    text = PROVISION_USERS.read_text()
    grants = re.findall(
        r"ensure_user \"\$([A-Z]+)_AMQP_USER\" \"\$\w+\" \\\s+'([^']+)' \\\s+'([^']+)' \\\s+'([^']+)'", text
    )
    return {service.lower(): tuple(map(_alternatives, regexes)) for service, *regexes in grants}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_broker_objects_match_eventbus_topology_and_the_compose_grants(overlay):
    (cluster,) = _objects(overlay, "RabbitmqCluster")
    kinds = ("Exchange", "Queue", "Binding", "Policy", "User", "Permission")
    specs = {kind: [obj["spec"] for obj in _objects(overlay, kind)] for kind in kinds}
    assert all(
        s["rabbitmqClusterReference"] == {"name": cluster["metadata"]["name"]}
        for k in kinds
        for s in specs[k]
    )
    assert all(s["vhost"] == "/" for k in kinds if k != "User" for s in specs[k])
    exchanges, queues, bindings = {}, {}, set()
    for topology in TOPOLOGIES.values():
        exchanges |= {
            topology.events_exchange: "topic",
            topology.dead_letter_exchange: "fanout",
            topology.redrive_exchange: "fanout",
        }
        queues |= {
            topology.queue: topology.queue_arguments,
            topology.dead_letter_queue: topology.dead_letter_queue_arguments,
        }
        bindings |= {(topology.source_exchange, topology.queue, key) for key in topology.binding_keys}
        # pika binds with the queue's name when no key is given.
        bindings |= {(topology.dead_letter_exchange, topology.dead_letter_queue, topology.dead_letter_queue)}
        bindings |= {(topology.redrive_exchange, topology.queue, topology.queue)}
    assert {s["name"]: s["type"] for s in specs["Exchange"]} == exchanges
    assert {s["name"]: {"x-queue-type": s["type"], **s["arguments"]} for s in specs["Queue"]} == queues
    assert all(
        s["durable"] is True and s["autoDelete"] is False for k in ("Exchange", "Queue") for s in specs[k]
    )
    assert {(s["source"], s["destination"], s["routingKey"]) for s in specs["Binding"]} == bindings
    assert all(s["destinationType"] == "queue" for s in specs["Binding"])
    (policy,) = specs["Policy"]
    assert _alternatives(policy["pattern"]) == set(queues) and policy["applyTo"] == "quorum_queues"
    users = {user["metadata"]["name"]: user["spec"] for user in _objects(overlay, "User")}
    compose = _compose_permissions()
    assert set(compose) == set(TOPOLOGIES)
    for permission in specs["Permission"]:
        user = permission["userReference"]["name"]
        service = user.removesuffix("-svc")
        secret = users[user]["importCredentialsSecret"]["name"]
        assert _secret_keys(overlay, secret) == {"username", "password"}
        granted = tuple(_alternatives(permission["permissions"][p]) for p in ("configure", "write", "read"))
        assert granted == compose[service], f"{user}: differs from provision-users.sh"
    assert (
        {p["userReference"]["name"] for p in specs["Permission"]}
        == set(users)
        == {f"{s}-svc" for s in TOPOLOGIES}
    )


# ----- secrets ---------------------------------------------------------------------------------------------


def _referenced_secrets(overlay: str) -> set[str]:
    names = set()
    for workload in _objects(overlay, *WORKLOAD_KINDS):
        for container in _containers(workload):
            names |= {s["secretRef"]["name"] for s in container.get("envFrom") or [] if "secretRef" in s}
            names |= {
                v["valueFrom"]["secretKeyRef"]["name"]
                for v in container.get("env") or []
                if "secretKeyRef" in v.get("valueFrom", {})
            }
    names |= {u["spec"]["importCredentialsSecret"]["name"] for u in _objects(overlay, "User")}
    names |= {
        r["name"] for a in _objects(overlay, "TriggerAuthentication") for r in a["spec"]["secretTargetRef"]
    }
    return names


def test_dev_secrets_are_fake_and_agree_with_the_servers_they_open():
    secrets = {s["metadata"]["name"]: s["stringData"] for s in _objects("dev", "Secret")}
    assert set(secrets) == _referenced_secrets("dev")
    for name, data in secrets.items():
        for key, value in data.items():
            assert key == "username" or "fake" in value.lower(), f"{name}.{key} does not look fake"
    for service in TOPOLOGIES:
        database = urlsplit(secrets[f"{service}-secrets"]["DATABASE_URL"])
        mysql = _containers(_one("dev", "StatefulSet", f"mysql-{service}"), init=False)[0]
        env = {v["name"]: v.get("value") for v in mysql["env"]}
        assert (database.hostname, database.port) == (f"mysql-{service}", 3306)
        assert (database.username, database.path) == (env["MYSQL_USER"], f"/{env['MYSQL_DATABASE']}")
        assert database.password == secrets[f"mysql-{service}-secrets"]["MYSQL_PASSWORD"]
        broker = urlsplit(secrets[f"{service}-secrets"]["RABBITMQ_URL"])
        user = secrets[f"{service}-amqp-user"]
        assert (broker.username, broker.password) == (user["username"], user["password"])
        # KEDA reads this URL from its own namespace: the host must resolve there too.
        assert broker.hostname == f"rabbitmq.{NAMESPACE}.svc" and broker.port == 5672


def test_production_reads_every_secret_from_aws_secrets_manager():
    assert not _objects("production", "Secret"), "a plain Secret in production"
    external = {e["spec"]["target"]["name"]: e["spec"] for e in _objects("production", "ExternalSecret")}
    assert set(external) == _referenced_secrets("production")
    assert {e["secretStoreRef"]["kind"] for e in external.values()} == {"ClusterSecretStore"}
    for service in TOPOLOGIES:
        app = external[f"{service}-secrets"]["target"]["template"]["data"]
        mysql = external[f"mysql-{service}-secrets"]["target"]["template"]["data"]
        amqp = external[f"{service}-amqp-user"]["target"]["template"]["data"]
        # One AWS value per password, so a URL and the account its server creates agree.
        assert f":{mysql['MYSQL_PASSWORD']}@mysql-{service}:3306/" in app["DATABASE_URL"]
        assert (
            f"amqp://{amqp['username']}:{amqp['password']}@rabbitmq.{NAMESPACE}.svc:5672/"
            in app["RABBITMQ_URL"]
        )
        keys = {e["dataFrom"][0]["extract"]["key"] for name, e in external.items() if service in name}
        assert keys == {f"microservices/production/{service}"}


# ----- monitoring --------------------------------------------------------------------------------------------


def _relabelled(relabelings: list[dict]) -> dict[str, str]:
    return {
        r["target_label" if "target_label" in r else "targetLabel"]: r["replacement"] for r in relabelings
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_service_monitors_scrape_what_compose_prometheus_scrapes_with_its_labels(overlay):
    monitors = {m["metadata"]["name"]: m["spec"] for m in _objects(overlay, "ServiceMonitor")}
    services = {s["metadata"]["name"]: s for s in _objects(overlay, "Service")}
    for job in PROMETHEUS["scrape_configs"]:
        name = job["job_name"]
        if name in ("prometheus", "node-exporter"):
            continue  # the Prometheus Operator's stack scrapes itself and its nodes
        monitor = monitors.pop(name)
        (endpoint,) = monitor["endpoints"]
        assert endpoint.get("path", "/metrics") == job.get("metrics_path", "/metrics"), name
        labels = _relabelled(endpoint.get("relabelings", []))
        expected = _relabelled(job.get("relabel_configs", [])) or job["static_configs"][0]["labels"]
        assert labels == expected, name
        if name == "rabbitmq":
            assert _selects(
                monitor["selector"],
                {"app.kubernetes.io/name": _objects(overlay, "RabbitmqCluster")[0]["metadata"]["name"]},
            )
            continue
        # The job label is the selected Service's name; its port is the one compose's job scrapes.
        (service,) = [
            s for s in services.values() if _selects(monitor["selector"], s["metadata"].get("labels", {}))
        ]
        assert service["metadata"]["name"] == name
        port = next(p for p in service["spec"]["ports"] if p["name"] == endpoint["port"])
        assert port["port"] == job["dns_sd_configs"][0]["port"], name
    assert not monitors, f"ServiceMonitors compose's Prometheus lacks: {sorted(monitors)}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_grafana_dashboard_is_a_config_map_for_the_sidecar(overlay):
    maps = {
        key: value
        for cm in _objects(overlay, "ConfigMap")
        if cm["metadata"].get("labels", {}).get("grafana_dashboard") == "1"
        for key, value in cm["data"].items()
    }
    files = {path.name: path.read_text() for path in DASHBOARDS.glob("*.json")}
    assert files and maps == files
