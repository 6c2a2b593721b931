"""deploy/k8s rendered offline and held against the code.

Each overlay is rendered with ``kubectl kustomize`` and validated against the Kubernetes
schemas (kubernetes-validate, strict); then the rendered YAML is read as the cluster would
run it and compared with what the gateway actually accepts and serves.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from support.k8s import (
    OVERLAYS,
    REPO,
    Manifest,
    containers,
    find,
    render,
    workloads,
)
from tritone_server.app import LIVENESS_SERVICE
from tritone_server.settings import Settings, environment_names, load_settings
from tritone_server.triton.resolver import TritonTarget

# The oldest release the manifests promise to work on (native gRPC probes: 1.27) and the
# newest whose schemas kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
GATEWAY, TRITON = "tritone-gateway", "tritone-triton"
TRITON_HEADLESS, DEFAULT_DENY = "tritone-triton-headless", "tritone-default-deny"
CLIENT_SELECTOR = {
    "namespaceSelector": {},
    "podSelector": {"matchLabels": {"tritone/client": "true"}},
}
"""Who may call the gateway's API by default: pods labelled as Tritone clients, anywhere."""


def pod_spec(doc: Manifest) -> dict[str, Any]:
    spec: dict[str, Any] = doc["spec"]["template"]["spec"]
    return spec


def container(doc: Manifest, name: str) -> dict[str, Any]:
    (found,) = [c for c in containers(pod_spec(doc)) if c["name"] == name]
    return found


def gateway_environment(manifests: list[Manifest]) -> dict[str, str]:
    """The gateway container's environment: its ConfigMaps, then its own env entries."""
    gateway = container(find(manifests, "Deployment", GATEWAY), "gateway")
    env: dict[str, str] = {}
    for source in gateway.get("envFrom", []):
        config_map = find(manifests, "ConfigMap", source["configMapRef"]["name"])
        env.update(config_map["data"])
    for entry in gateway.get("env", []):
        env[entry["name"]] = entry.get("value", "")
    return env


def gateway_settings(manifests: list[Manifest]) -> Settings:
    return load_settings([], gateway_environment(manifests))


def container_port(spec: dict[str, Any], port: int | str) -> int:
    """A container port by number or by name, as Services and probes refer to it."""
    for entry in spec.get("ports", []):
        if port in (entry["containerPort"], entry.get("name")):
            return int(entry["containerPort"])
    raise LookupError(f"container {spec['name']} has no port {port!r}")


@pytest.fixture(scope="module", params=OVERLAYS)
def manifests(request: pytest.FixtureRequest) -> list[Manifest]:
    return render(request.param)


MONITORING_API = "monitoring.coreos.com/v1"
SCRAPER_SOURCE = {"namespaceSelector": {"matchLabels": {"tritone/metrics-scraper": "true"}}}
"""Who may scrape: a namespace the operator labels, not one assumed by name."""
"""The Prometheus Operator's CRDs: kubernetes-validate has no schema for them; the
monitoring test checks what they must hold."""


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_document_is_valid_kubernetes(manifests: list[Manifest], version: str) -> None:
    assert manifests, "the overlay rendered nothing"
    for doc in manifests:
        if doc["apiVersion"] == MONITORING_API:
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            name = f"{doc['kind']}/{doc['metadata']['name']}"
            raise AssertionError(f"{name} is not valid Kubernetes {version}: {exc}") from exc


def test_overlays_hold_every_part(manifests: list[Manifest]) -> None:
    kinds = {(doc["kind"], doc["metadata"]["name"]) for doc in manifests}
    for part in [
        ("Deployment", GATEWAY),
        ("Deployment", TRITON),
        ("Service", GATEWAY),
        ("Service", "tritone-gateway-headless"),
        ("Service", TRITON),
        ("Service", TRITON_HEADLESS),
        ("HorizontalPodAutoscaler", GATEWAY),
        ("HorizontalPodAutoscaler", TRITON),
        ("PodDisruptionBudget", GATEWAY),
        ("PodDisruptionBudget", TRITON),
        ("NetworkPolicy", GATEWAY),
        ("NetworkPolicy", TRITON),
        ("NetworkPolicy", DEFAULT_DENY),
    ]:
        assert part in kinds


def test_every_tritone_variable_is_a_real_setting(manifests: list[Manifest]) -> None:
    env = gateway_environment(manifests)
    known = environment_names()
    unknown = sorted(k for k in env if k.startswith("TRITONE_") and k not in known)
    assert unknown == [], f"the gateway reads no such settings: {unknown}"
    settings = gateway_settings(manifests)  # parses every value, as the gateway will
    assert settings.triton_urls, "the gateway must be pointed at the Triton Service"


def test_the_deployed_default_model_is_the_one_make_serve_uses(manifests: list[Manifest]) -> None:
    """A call without a model gets the same answer from a cluster as from `make serve`."""
    assert gateway_settings(manifests).default_model == Settings().default_model


def test_gateway_ports_and_probes_are_what_it_serves(manifests: list[Manifest]) -> None:
    settings = gateway_settings(manifests)
    gateway = container(find(manifests, "Deployment", GATEWAY), "gateway")
    assert settings.host == "0.0.0.0"
    served = {
        "grpc": settings.port,
        "http": settings.http_port,
        "health": settings.health_port,
        "metrics": settings.metrics_port,
    }
    assert {p["name"]: p["containerPort"] for p in gateway["ports"]} == served
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        grpc_probe = gateway[probe]["grpc"]
        assert grpc_probe["port"] == settings.health_port, f"{probe} must ask the health port"
    # Readiness follows Triton (""); liveness and startup must not restart a gateway for it.
    assert gateway["readinessProbe"]["grpc"].get("service", "") == ""
    assert gateway["livenessProbe"]["grpc"]["service"] == LIVENESS_SERVICE
    assert gateway["startupProbe"]["grpc"]["service"] == LIVENESS_SERVICE


def test_termination_grace_outlasts_the_gateways_drain(manifests: list[Manifest]) -> None:
    settings = gateway_settings(manifests)
    deployment = find(manifests, "Deployment", GATEWAY)
    gateway = container(deployment, "gateway")
    pre_stop = gateway["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    drain = float(pre_stop[1]) + settings.grace_s
    assert pod_spec(deployment)["terminationGracePeriodSeconds"] > drain + 5


def test_services_point_at_ports_the_pods_serve(manifests: list[Manifest]) -> None:
    settings = gateway_settings(manifests)
    gateway = container(find(manifests, "Deployment", GATEWAY), "gateway")
    api = {settings.port, settings.http_port}
    for name in (GATEWAY, "tritone-gateway-headless"):
        service = find(manifests, "Service", name)
        for port in service["spec"]["ports"]:
            assert container_port(gateway, port["targetPort"]) in api
    assert find(manifests, "Service", "tritone-gateway-headless")["spec"]["clusterIP"] == "None"
    headless_ports = find(manifests, "Service", "tritone-gateway-headless")["spec"]["ports"]
    assert [p["port"] for p in headless_ports] == [settings.port]


def test_gateways_find_every_triton_through_the_headless_service(
    manifests: list[Manifest],
) -> None:
    """TRITONE_TRITON_URLS is dns:/// on the headless Service (one address per ready pod),
    whose port leads to Triton's gRPC port."""
    settings = gateway_settings(manifests)
    (url,) = settings.triton_urls
    target = TritonTarget.parse(url)
    assert target.discovered, f"{url} must be dns:/// so that every Triton pod is used"
    service = find(manifests, "Service", target.host.split(".")[0])
    assert service["metadata"]["name"] == TRITON_HEADLESS
    assert service["spec"]["clusterIP"] == "None"
    triton_deployment = find(manifests, "Deployment", TRITON)
    pod_labels = triton_deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert not service["spec"].get("publishNotReadyAddresses"), "only ready pods in DNS"
    triton = container(triton_deployment, "triton")
    (grpc_port,) = [p for p in service["spec"]["ports"] if p["port"] == target.port]
    assert f"--grpc-port={container_port(triton, grpc_port['targetPort'])}" in triton["args"]
    assert 0 < settings.triton_resolve_s <= 15, "an added Triton must get work within 30 s"
    # a stopping Triton serves on until every gateway has resolved again and drained it
    pre_stop = triton["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep" and float(pre_stop[1]) > settings.triton_resolve_s
    grace = pod_spec(triton_deployment)["terminationGracePeriodSeconds"]
    assert grace > float(pre_stop[1]) + settings.triton_timeout_s, "requests in flight finish"


def test_callers_connections_are_aged_so_round_robin_rebalances(
    manifests: list[Manifest],
) -> None:
    settings = gateway_settings(manifests)
    assert 0 < settings.max_connection_age_s <= 600
    assert settings.max_connection_age_grace_s >= settings.max_stream_s, "ageing cuts streams"


def test_images_are_pinned(manifests: list[Manifest]) -> None:
    for doc in workloads(manifests):
        for spec in containers(pod_spec(doc)):
            image = spec["image"]
            assert "@sha256:" in image or re.search(r":[\w][\w.-]*$", image), image
            assert not image.endswith(":latest"), image
    triton = container(find(manifests, "Deployment", TRITON), "triton")
    assert re.fullmatch(r"nvcr\.io/nvidia/tritonserver:\d\d\.\d\d-py3", triton["image"])


def test_triton_allows_what_the_gateway_uses(manifests: list[Manifest]) -> None:
    triton = container(find(manifests, "Deployment", TRITON), "triton")
    assert "command" not in triton, "args only: NVIDIA's entrypoint must stay in front"
    args = triton["args"]
    assert args[0] == "tritonserver"
    assert "--model-control-mode=explicit" in args, "LoadModel needs explicit model control"
    assert "--load-model=*" in args, "every model must be loaded at start"
    (repository,) = [a.split("=", 1)[1] for a in args if a.startswith("--model-repository=")]
    mounts = {m["mountPath"]: m["name"] for m in triton["volumeMounts"]}
    init = container(find(manifests, "Deployment", TRITON), "model-repository")
    assert {m["mountPath"]: m["name"] for m in init["volumeMounts"]}[repository] == (
        mounts[repository]
    ), "the init container must fill the folder Triton serves"


def test_every_container_is_limited_and_unprivileged(manifests: list[Manifest]) -> None:
    for doc in workloads(manifests):
        spec = pod_spec(doc)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec.get("automountServiceAccountToken") is False
        for c in containers(spec):
            where = f"{doc['metadata']['name']}/{c['name']}"
            limits = c["resources"]["limits"]
            assert {"cpu", "memory"} <= set(limits), f"{where} needs cpu and memory limits"
            assert set(c["resources"]["requests"]) >= {"cpu", "memory"}, where
            context = c["securityContext"]
            assert context["runAsNonRoot"] is True, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["capabilities"]["drop"] == ["ALL"], where


def test_setting_files_live_in_mounted_secrets(manifests: list[Manifest]) -> None:
    settings = gateway_settings(manifests)
    deployment = find(manifests, "Deployment", GATEWAY)
    gateway = container(deployment, "gateway")
    volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
    for path in (settings.tls_cert, settings.tls_key, settings.token_file):
        assert path is not None, "the base serves TLS with caller tokens"
    for path in (
        settings.tls_cert,
        settings.tls_key,
        settings.token_file,
        settings.admin_token_file,
    ):
        assert path is not None
        (mount,) = [m for m in gateway["volumeMounts"] if path.parent == Path(m["mountPath"])]
        assert "secret" in volumes[mount["name"]], f"{path} must come from a Secret"


def test_replicas_autoscaling_and_budgets_match(manifests: list[Manifest]) -> None:
    deployments = {d["metadata"]["name"]: d for d in manifests if d["kind"] == "Deployment"}
    for hpa in (d for d in manifests if d["kind"] == "HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment" and target["name"] in deployments
        # two owners of one number fight: every apply would reset what the HPA chose
        assert "replicas" not in deployments[target["name"]]["spec"], target["name"]
        assert hpa["spec"]["minReplicas"] >= 2, f"{target['name']} is a single point of failure"
    for name in (GATEWAY, TRITON):
        assert find(manifests, "PodDisruptionBudget", name)["spec"]["minAvailable"] >= 1
    for kind in ("PodDisruptionBudget", "NetworkPolicy"):
        for doc in (d for d in manifests if d["kind"] == kind):
            if doc["metadata"]["name"] == DEFAULT_DENY:
                continue
            selector = doc["spec"].get("selector", doc["spec"].get("podSelector"))
            labels = deployments[doc["metadata"]["name"]]["spec"]["template"]["metadata"]
            assert selector["matchLabels"].items() <= labels["labels"].items()


def test_triton_rolls_without_a_spare_gpu_and_spreads_over_nodes(
    manifests: list[Manifest],
) -> None:
    deployment = find(manifests, "Deployment", TRITON)
    strategy = deployment["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    (spread,) = pod_spec(deployment)["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert spread["maxSkew"] == 1
    assert spread["labelSelector"]["matchLabels"] == labels


def policy_rules(manifests: list[Manifest], name: str, direction: str) -> list[dict[str, Any]]:
    policy = find(manifests, "NetworkPolicy", name)
    assert direction.capitalize() in policy["spec"]["policyTypes"]
    rules: list[dict[str, Any]] = policy["spec"].get(direction, [])
    return rules


def test_everything_is_denied_unless_a_policy_allows_it(manifests: list[Manifest]) -> None:
    deny = find(manifests, "NetworkPolicy", DEFAULT_DENY)["spec"]
    assert deny["podSelector"] == {}
    assert sorted(deny["policyTypes"]) == ["Egress", "Ingress"]
    assert "ingress" not in deny and "egress" not in deny
    for doc in (d for d in manifests if d["kind"] == "NetworkPolicy"):
        for rule in doc["spec"].get("ingress", []):
            assert rule.get("from"), f"{doc['metadata']['name']}: an ingress rule from anyone"
            assert rule.get("ports"), f"{doc['metadata']['name']}: an ingress rule to any port"
        for rule in doc["spec"].get("egress", []):
            assert rule.get("to"), f"{doc['metadata']['name']}: an egress rule to anywhere"
            assert rule.get("ports"), f"{doc['metadata']['name']}: an egress rule to any port"


def test_the_api_admits_only_the_chosen_callers(manifests: list[Manifest]) -> None:
    api_rules = [
        rule
        for rule in policy_rules(manifests, GATEWAY, "ingress")
        if {p["port"] for p in rule["ports"]} & {"grpc", "http"}
    ]
    assert len(api_rules) == 1, "callers are chosen in one place"
    (rule,) = api_rules
    assert {p["port"] for p in rule["ports"]} == {"grpc", "http"}
    assert rule["from"] == [CLIENT_SELECTOR]
    for rule in policy_rules(manifests, GATEWAY, "ingress"):
        if rule is not api_rules[0]:
            (source,) = rule["from"]
            assert source == SCRAPER_SOURCE
            assert {p["port"] for p in rule["ports"]} <= {"health", "metrics"}


def test_only_gateways_reach_triton_and_triton_reaches_nothing(
    manifests: list[Manifest],
) -> None:
    gateway_labels = find(manifests, "Deployment", GATEWAY)["spec"]["template"]["metadata"][
        "labels"
    ]
    for rule in policy_rules(manifests, TRITON, "ingress"):
        ports = {p["port"] for p in rule["ports"]}
        if "grpc" in ports:
            (source,) = rule["from"]
            assert source["podSelector"]["matchLabels"].items() <= gateway_labels.items()
            assert "namespaceSelector" not in source
        else:
            assert ports == {"metrics"}
    assert policy_rules(manifests, TRITON, "egress") == []


def test_gateways_may_reach_triton_and_dns_only(manifests: list[Manifest]) -> None:
    triton_deployment = find(manifests, "Deployment", TRITON)
    triton_labels = triton_deployment["spec"]["template"]["metadata"]["labels"]
    grpc_port = container_port(container(triton_deployment, "triton"), "grpc")
    to_triton, to_dns = policy_rules(manifests, GATEWAY, "egress")
    ((peer,),) = [to_triton["to"]]
    assert peer["podSelector"]["matchLabels"].items() <= triton_labels.items()
    assert [p["port"] for p in to_triton["ports"]] == [grpc_port]
    ((dns,),) = [to_dns["to"]]
    assert dns["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}
    assert sorted((p["protocol"], p["port"]) for p in to_dns["ports"]) == [
        ("TCP", 53),
        ("UDP", 53),
    ]


def test_gpu_overlay_gives_triton_a_gpu_and_keeps_the_configs() -> None:
    manifests = render("overlays/gpu")
    triton = container(find(manifests, "Deployment", TRITON), "triton")
    assert triton["resources"]["limits"]["nvidia.com/gpu"] == 1
    init = container(find(manifests, "Deployment", TRITON), "model-repository")
    assert "KIND_CPU" not in " ".join(init["command"])
    configs = list((REPO / "model_repository").glob("*/config.pbtxt"))
    assert configs and all("KIND_GPU" in c.read_text() for c in configs)


def test_cpu_overlay_init_container_turns_gpu_groups_into_cpu_ones(tmp_path: Path) -> None:
    """Run the cpu overlay's init command (with this machine's sh) on a copy of the repo."""
    manifests = render("overlays/cpu")
    triton = find(manifests, "Deployment", TRITON)
    assert "nvidia.com/gpu" not in str(triton)
    init = container(triton, "model-repository")
    shell, flag, script = init["command"]
    assert (shell, flag) == ("/bin/sh", "-c")
    models, repository = tmp_path / "models", tmp_path / "repository"
    shutil.copytree(REPO / "model_repository", models)
    repository.mkdir()
    script = script.replace("/models/", f"{models}/").replace("/repository/", f"{repository}/")
    subprocess.run([shell, flag, script], check=True, timeout=60)
    copied = sorted(p.relative_to(repository) for p in repository.rglob("*") if p.is_file())
    originals = sorted(p.relative_to(models) for p in models.rglob("*") if p.is_file())
    assert copied == originals
    for config in repository.glob("*/config.pbtxt"):
        text = config.read_text()
        assert "KIND_GPU" not in text and "KIND_CPU" in text
        original = (models / config.relative_to(repository)).read_text()
        assert text == original.replace("KIND_GPU", "KIND_CPU")


def test_monitoring_is_optional_and_scales_on_queue_time_and_streams() -> None:
    assert all(d["apiVersion"] != MONITORING_API for d in render("overlays/gpu"))
    manifests = render("overlays/gpu-monitored")
    gateway = container(find(manifests, "Deployment", GATEWAY), "gateway")
    triton = container(find(manifests, "Deployment", TRITON), "triton")
    for name, scraped in ((GATEWAY, gateway), (TRITON, triton)):
        monitor = find(manifests, "PodMonitor", name)
        assert monitor["apiVersion"] == MONITORING_API
        pods = find(manifests, "Deployment", name)["spec"]["template"]["metadata"]["labels"]
        assert monitor["spec"]["selector"]["matchLabels"].items() <= pods.items()
        (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
        container_port(scraped, endpoint["port"])  # a port the pod serves
        assert endpoint["port"] == "metrics"
    # scrapes come from the labelled scraper namespace, which both policies admit to "metrics"
    for name in (GATEWAY, TRITON):
        admitted = [
            rule
            for rule in find(manifests, "NetworkPolicy", name)["spec"]["ingress"]
            if "metrics" in {p["port"] for p in rule["ports"]}
        ]
        assert admitted, f"{name}: metrics port closed to the scraper"
        assert [rule["from"] for rule in admitted] == [[SCRAPER_SOURCE]]

    rules = yaml.safe_load(
        (REPO / "deploy/k8s/components/monitoring/prometheus-adapter-rules.yaml").read_text()
    )["rules"]["custom"]
    served = {rule["name"]["as"]: rule for rule in rules}
    triton_hpa = find(manifests, "HorizontalPodAutoscaler", TRITON)["spec"]
    (queue,) = triton_hpa["metrics"]
    assert queue["type"] == "Pods"
    queue_rule = served[queue["pods"]["metric"]["name"]]
    assert "nv_inference_queue_duration_us" in queue_rule["metricsQuery"]
    assert "nv_inference_request_success" in queue_rule["metricsQuery"]
    gateway_hpa = find(manifests, "HorizontalPodAutoscaler", GATEWAY)["spec"]
    pods_metrics = [
        m["pods"]["metric"]["name"] for m in gateway_hpa["metrics"] if m["type"] == "Pods"
    ]
    assert pods_metrics == ["tritone_open_streams"]
    assert "tritone_open_streams" in served
    assert {m["type"] for m in gateway_hpa["metrics"]} == {"Resource", "Pods"}, "CPU stays"
    for rule in served.values():
        assert rule["resources"]["overrides"]["pod"] == {"resource": "pod"}


def test_tls_to_triton_is_optional_and_both_ends_share_one_secret() -> None:
    assert gateway_settings(render("overlays/gpu")).triton_tls_ca is None
    manifests = render("overlays/gpu-triton-tls")
    settings = gateway_settings(manifests)
    assert settings.triton_tls_ca is not None
    # the gateways dial pod IPs: the name checked is the headless Service's
    assert settings.triton_tls_server_name == TRITON_HEADLESS
    assert any(TritonTarget.parse(u).host == TRITON_HEADLESS for u in settings.triton_urls)

    def secret_behind(doc: Manifest, name: str, path: Path) -> str:
        volumes = {v["name"]: v for v in pod_spec(doc)["volumes"]}
        (mount,) = [
            m for m in container(doc, name)["volumeMounts"] if path.parent == Path(m["mountPath"])
        ]
        secret: str = volumes[mount["name"]]["secret"]["secretName"]
        return secret

    gateway_doc = find(manifests, "Deployment", GATEWAY)
    triton_doc = find(manifests, "Deployment", TRITON)
    args = container(triton_doc, "triton")["args"]
    assert "--grpc-use-ssl=true" in args
    files = {a.split("=", 1)[0]: Path(a.split("=", 1)[1]) for a in args if "=" in a}
    secrets = {
        secret_behind(triton_doc, "triton", files["--grpc-server-cert"]),
        secret_behind(triton_doc, "triton", files["--grpc-server-key"]),
        secret_behind(gateway_doc, "gateway", settings.triton_tls_ca),
    }
    assert secrets == {"tritone-triton-tls"}
