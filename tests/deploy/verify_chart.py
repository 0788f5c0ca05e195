"""The Helm chart, checked without a cluster: Helm 4's own lint and render (helm-python-sdk),
every rendered object of Kubernetes' own kinds validated strictly against the 1.31 schemas
(kubernetes-validate), the custom resources written out for validate-crds.mjs, the promises of
the issue asserted on the rendered objects, and the objects the behaviour check needs saved.

    python verify_chart.py OUT_DIR
"""

import json
import sys
from pathlib import Path

import helm_python as helm
import kubernetes_validate
import yaml

from checks import check, fail

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "coder-audit-gateway"
KUBE = "1.31.0"
REQUIRED = {
    "coderUrl": "http://coder.coder.svc.cluster.local",
    "image": {"repository": "registry.example.com/coder-audit-gateway"},
}
CUSTOM_KINDS = {"HTTPRoute", "GRPCRoute", "ServiceMonitor"}


def render(chart, values):
    """The rendered objects, by kind and name, and the NOTES."""
    manifests = chart.render(values, name="audit", namespace="audit", is_install=True)
    objects, notes = [], ""
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            notes = text
            continue
        for document in yaml.safe_load_all(text):
            if document:
                objects.append((path, document))
    return objects, notes


def lint(values, label):
    report = helm.lint(str(CHART), values, strict=True, kube_version=f"v{KUBE}")
    for message in report.get("messages", []):
        print(f"  lint[{label}] {message}")
    problems = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2]
    check(not problems and not report.get("errors"), f"helm lint ({label}) found problems")


def validate(objects, label, custom):
    for path, obj in objects:
        if obj["kind"] in CUSTOM_KINDS:
            custom.append({"source": f"{label}:{path}", "resource": obj})
            continue
        try:
            kubernetes_validate.validate(obj, KUBE, strict=True)
        except kubernetes_validate.ValidationError as error:
            fail(f"{label}:{path} {obj['kind']} is invalid for Kubernetes {KUBE}: {error.message}")
        print(f"  valid ({label}, Kubernetes {KUBE}, strict): {obj['kind']}/{obj['metadata']['name']}")


def by_kind(objects):
    found = {}
    for _, obj in objects:
        found.setdefault(obj["kind"], []).append(obj)
    return found


def refused(chart, values, words):
    """Rendering `values` must fail, naming `words`."""
    try:
        chart.render(values, name="audit", namespace="audit")
    except (helm.HelmError, ValueError) as error:
        text = str(error)
        check(all(w in text for w in words), f"the refusal does not name {words}: {text}")
        return
    fail(f"rendered although {words} is wrong")


def check_defaults(kinds):
    deployment = kinds["Deployment"][0]
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    check(spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0, "maxUnavailable is not 0")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        check(container[probe]["httpGet"]["path"] == "/healthz", f"{probe} does not ask /healthz")
    check(container["lifecycle"]["preStop"]["sleep"]["seconds"] > 0, "no preStop pause")
    grace = int(env["GATEWAY_SHUTDOWN_GRACE"].rstrip("s"))
    check(
        pod["terminationGracePeriodSeconds"] > grace + container["lifecycle"]["preStop"]["sleep"]["seconds"],
        "terminationGracePeriodSeconds leaves no room for the drain",
    )
    security = container["securityContext"]
    check(security["readOnlyRootFilesystem"] and security["runAsNonRoot"], "container security context")
    check(security["allowPrivilegeEscalation"] is False, "privilege escalation allowed")
    check(security["capabilities"]["drop"] == ["ALL"], "capabilities not dropped")
    check(pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", "no seccomp profile")
    check(pod["automountServiceAccountToken"] is False, "a service account token is mounted")
    check(kinds["ServiceAccount"][0]["automountServiceAccountToken"] is False, "the account mounts tokens")
    check(
        any(t["topologyKey"] == "kubernetes.io/hostname" for t in pod["topologySpreadConstraints"]),
        "replicas are not spread across nodes",
    )
    check(env["GATEWAY_LOG_FORMAT"] == "json", "logs are not json")
    # Helm renders big numbers as floats (1.6777216e+07) unless told otherwise; clap refuses them.
    for name, value in env.items():
        check("e+" not in (value or ""), f"{name}={value} is not a number the gateway reads")
    check(env["CODER_URL"] == REQUIRED["coderUrl"], "CODER_URL is not coderUrl")
    ports = kinds["Service"][0]["spec"]["ports"]
    check(len(ports) == 1 and ports[0]["appProtocol"] == "kubernetes.io/h2c", "the Service is not one h2c port")
    check("PodDisruptionBudget" in kinds, "two replicas but no PodDisruptionBudget")
    for optional in ("Ingress", "HorizontalPodAutoscaler", "NetworkPolicy", *CUSTOM_KINDS):
        check(optional not in kinds, f"{optional} is rendered by default")


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    full = yaml.safe_load((CHART / "ci" / "full-values.yaml").read_text())
    custom = []
    with helm.Chart.load(str(CHART)) as chart:
        print(f"== helm lint --strict (Helm {helm.helm_sdk_version()})")
        lint(REQUIRED, "default")
        lint(full, "full")

        print("== render and validate")
        default_objects, notes = render(chart, REQUIRED)
        validate(default_objects, "default", custom)
        full_objects, _ = render(chart, full)
        validate(full_objects, "full", custom)
        single, _ = render(chart, {**REQUIRED, "replicaCount": 1})
        check("PodDisruptionBudget" not in by_kind(single), "a PodDisruptionBudget for one replica")

        print("== what the chart promises")
        defaults = by_kind(default_objects)
        check_defaults(defaults)
        everything = by_kind(full_objects)
        for kind in ("Ingress", "HorizontalPodAutoscaler", "NetworkPolicy", "PodDisruptionBudget", *CUSTOM_KINDS):
            check(kind in everything, f"full values do not render a {kind}")
        full_deployment = everything["Deployment"][0]
        check("replicas" not in full_deployment["spec"], "replicas set although the HPA scales")
        full_container = full_deployment["spec"]["template"]["spec"]["containers"][0]
        probe = full_container["readinessProbe"]["httpGet"]
        check(probe["port"] == "metrics" and probe["scheme"] == "HTTP", "probes skip the metrics listener")
        full_env = {e["name"]: e.get("value") for e in full_container["env"]}
        check(full_env.get("GATEWAY_METRICS_LISTEN") == "0.0.0.0:9090", "no --metrics-listen")
        monitor = everything["ServiceMonitor"][0]["spec"]
        check(monitor["endpoints"][0]["port"] == "metrics", "the ServiceMonitor scrapes the public port")
        check(len(everything["Service"]) == 2, "no Service for the metrics port")
        tls_only = by_kind(render(chart, {**REQUIRED, "tls": {"enabled": True, "secretName": "t"}})[0])
        tls_probe = tls_only["Deployment"][0]["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
        check(tls_probe["httpGet"]["scheme"] == "HTTPS", "TLS probes are not HTTPS")
        check("kubernetes.io/port-forward" not in notes and "port-forward" in notes, "NOTES do not say how to connect")

        print("== refusals")
        refused(chart, {"image": REQUIRED["image"]}, ["coderUrl"])
        refused(chart, {"coderUrl": REQUIRED["coderUrl"]}, ["image.repository"])
        refused(chart, {**REQUIRED, "config": {"logFormat": "xml"}}, ["logFormat"])
        refused(chart, {**REQUIRED, "replicas": 3}, ["replicas"])

    listing = {
        label: [f"{o['kind']}/{o['metadata']['name']}" for _, o in objects]
        for label, objects in (("default", default_objects), ("full", full_objects))
    }
    (out / "objects.json").write_text(json.dumps(listing, indent=2))
    (out / "custom-resources.json").write_text(json.dumps(custom))
    (out / "default.json").write_text(
        json.dumps({"deployment": defaults["Deployment"][0], "service": defaults["Service"][0]})
    )
    (out / "grpcroute.json").write_text(json.dumps(everything["GRPCRoute"][0]))
    for label, names in listing.items():
        print(f"rendered ({label}): {', '.join(names)}")


if __name__ == "__main__":
    main()
