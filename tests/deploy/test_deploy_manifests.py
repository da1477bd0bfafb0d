"""Every Kubernetes manifest in deploy/, offline: `kubectl kustomize` builds them all,
the core kinds validate against the Kubernetes schemas (strict), cert-manager's
resources are checked field by field, and the examples agree with each other and
with the server's manifests (names, hosts, volumes, the agent's settings)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from deploy_kit import (
    EXAMPLES,
    K8S,
    SERVICE_NAME,
    agent_container,
    load_entrypoint,
    manifest_files,
    objects,
    pod_environment,
    the_object,
)
from pymongo.uri_parser import parse_uri

from genconf.cli.main import build_parser

entrypoint = load_entrypoint()
K8S_VERSIONS = ("1.30", kubernetes_validate.latest_version())
CERT_MANAGER = "cert-manager.io/v1"
RESTRICTED = "restricted"


def all_objects() -> list[dict[str, Any]]:
    return [o for path in manifest_files() for o in objects(path)]


def key(obj: dict[str, Any]) -> tuple[str, str, str]:
    return obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


# -- every manifest --------------------------------------------------------------------------


def test_kubectl_kustomize_builds_every_manifest(tmp_path: Path) -> None:
    """kustomize parses each file as Kubernetes resources (apiVersion, kind, name) and
    refuses two objects of one kind and name."""
    names = []
    for i, path in enumerate(manifest_files()):
        copy = tmp_path / f"{i:02d}-{path.name}"
        copy.write_text(path.read_text())
        names.append(copy.name)
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump({"resources": names}))
    built = subprocess.run(
        ["kubectl", "kustomize", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    out = [d for d in yaml.safe_load_all(built.stdout) if d]
    assert sorted(map(key, out)) == sorted(map(key, all_objects()))
    kinds = {o["kind"] for o in out}
    assert {"StatefulSet", "DaemonSet", "Job", "Certificate", "Issuer", "Deployment"} <= kinds


def test_core_kinds_validate_against_the_kubernetes_schemas() -> None:
    checked = 0
    for obj in all_objects():
        if obj["apiVersion"] == CERT_MANAGER:
            continue
        for version in K8S_VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)
            checked += 1
    assert checked >= 2 * 15


def test_every_namespaced_object_names_its_namespace() -> None:
    namespaces = {o["metadata"]["name"] for o in all_objects() if o["kind"] == "Namespace"}
    assert {"genconf", "mongodb", "web", "nodecfg"} <= namespaces
    for obj in all_objects():
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] in namespaces, key(obj)


# -- certificates ----------------------------------------------------------------------------


def test_cert_manager_makes_the_secret_the_deployment_mounts() -> None:
    path = EXAMPLES / "cert-manager.yaml"
    docs = objects(path)
    assert {o["apiVersion"] for o in docs} == {CERT_MANAGER}
    issuers = {o["metadata"]["name"]: o["spec"] for o in docs if o["kind"] == "Issuer"}
    certs = {o["metadata"]["name"]: o["spec"] for o in docs if o["kind"] == "Certificate"}
    assert all(o["metadata"]["namespace"] == "genconf" for o in docs)

    server = certs["genconf"]
    assert set(server) >= {"secretName", "dnsNames", "issuerRef"}
    assert {SERVICE_NAME, f"{SERVICE_NAME}.cluster.local"} <= set(server["dnsNames"])
    assert server["commonName"] in server["dnsNames"]
    assert "server auth" in server["usages"]
    # The chain: server <- Issuer genconf-ca <- CA certificate <- self-signed Issuer.
    ca_issuer = issuers[server["issuerRef"]["name"]]
    assert server["issuerRef"]["kind"] == "Issuer"
    (ca_cert,) = [c for c in certs.values() if c["secretName"] == ca_issuer["ca"]["secretName"]]
    assert ca_cert["isCA"] is True
    assert issuers[ca_cert["issuerRef"]["name"]] == {"selfSigned": {}}

    deployment = the_object(K8S / "deployment.yaml", "Deployment", "genconf")["spec"]["template"]
    (tls,) = [v for v in deployment["spec"]["volumes"] if v["name"] == "tls"]
    assert tls["secret"]["secretName"] == server["secretName"]
    # cert-manager writes tls.crt, tls.key and (CA issuer) ca.crt: what the pods read.
    assert {i["key"] for i in tls["secret"]["items"]} == {"tls.crt", "tls.key", "ca.crt"}
    (container,) = deployment["spec"]["containers"]
    probe = container["readinessProbe"]["exec"]["command"]
    assert probe[probe.index("--server-name") + 1] in server["dnsNames"]


# -- MongoDB ---------------------------------------------------------------------------------


def test_mongodb_statefulset_is_the_replica_set_the_configmap_names() -> None:
    path = EXAMPLES / "mongodb.yaml"
    sts = the_object(path, "StatefulSet", "mongo")
    service = the_object(path, "Service", sts["spec"]["serviceName"])
    namespace = sts["metadata"]["namespace"]
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is True
    pod = sts["spec"]["template"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    (mongod,) = pod["spec"]["containers"]
    args = mongod["args"]
    replica_set = args[args.index("--replSet") + 1]
    assert mongod["image"] == "mongo:6.0"
    port = mongod["ports"][0]["containerPort"]
    hosts = [
        f"{sts['metadata']['name']}-{i}.{service['metadata']['name']}.{namespace}.svc:{port}"
        for i in range(sts["spec"]["replicas"])
    ]
    assert len(hosts) == 3

    job = the_object(path, "Job", "mongo-init")["spec"]["template"]["spec"]
    (init,) = job["containers"]
    script = init["command"][-1]
    assert init["command"][init["command"].index("--host") + 1] == hosts[0]
    assert f'_id: "{replica_set}"' in script and "rs.initiate(config)" in script
    members = [
        line.split('host: "')[1].split('"')[0] for line in script.splitlines() if "host:" in line
    ]
    assert members == hosts

    uri = parse_uri(the_object(K8S / "configmap.yaml", "ConfigMap", "genconf")["data"]["mongo-uri"])
    assert [f"{h}:{p}" for h, p in uri["nodelist"]] == hosts
    assert uri["options"]["replicaSet"] == replica_set


# -- agents ----------------------------------------------------------------------------------


def pod_security_of(path: Path, namespace: str) -> str:
    ns = the_object(path, "Namespace", namespace)
    return ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]


def check_restricted(pod: dict[str, Any]) -> None:
    """What Pod Security's restricted level asks of every container."""
    spec = pod["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for c in [*spec.get("initContainers", []), *spec["containers"]]:
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False, c["name"]
        assert sc["capabilities"]["drop"] == ["ALL"], c["name"]


def test_restricted_namespaces_hold_restricted_pods() -> None:
    for path, kind, name in [
        (EXAMPLES / "mongodb.yaml", "StatefulSet", "mongo"),
        (EXAMPLES / "mongodb.yaml", "Job", "mongo-init"),
        (EXAMPLES / "agent-sidecar.yaml", "StatefulSet", "web"),
    ]:
        obj = the_object(path, kind, name)
        assert pod_security_of(path, obj["metadata"]["namespace"]) == RESTRICTED
        check_restricted(obj["spec"]["template"])


def agent_setup(path: Path, kind: str, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    workload = the_object(path, kind, name)
    pod = workload["spec"]["template"]["spec"]
    container = agent_container(pod)
    server_image = the_object(K8S / "deployment.yaml", "Deployment", "genconf")["spec"]["template"][
        "spec"
    ]["containers"][0]["image"]
    assert container["image"] == server_image  # the same image, in agent mode
    return pod, container


def volume_dirs(pod: dict[str, Any], tmp_path: Path) -> dict[str, Path]:
    dirs = {}
    for volume in pod["volumes"]:
        dirs[volume["name"]] = tmp_path / volume["name"]
        dirs[volume["name"]].mkdir()
    return dirs


def test_sidecar_agent_writes_where_the_application_reads(tmp_path: Path) -> None:
    path = EXAMPLES / "agent-sidecar.yaml"
    sts = the_object(path, "StatefulSet", "web")
    pod, agent = agent_setup(path, "StatefulSet", "web")
    assert agent in pod["initContainers"] and agent["restartPolicy"] == "Always"
    dirs = volume_dirs(pod, tmp_path)
    (dirs["tokens"] / "web-1").write_text("token-of-web-1")
    env = pod_environment(pod, agent, {"metadata.name": "web-1"}, dirs)
    argv = entrypoint.container_argv(["agent"], env)
    args = build_parser().parse_args(argv)
    assert (args.unit, args.token) == ("web/1", "token-of-web-1")
    assert env["GENCONF_SERVER"] == f"{SERVICE_NAME}:50051"
    assert Path(env["GENCONF_TLS_CA"]).parent == dirs["genconf-ca"]
    # The file is in the emptyDir the application container mounts; the startup probe
    # waits for it.
    written = Path(args.write)
    (config,) = [v for v in pod["volumes"] if "emptyDir" in v]
    assert written.parent == dirs[config["name"]]
    (app,) = pod["containers"]
    app_mount = next(m for m in app["volumeMounts"] if m["name"] == config["name"])
    agent_mount = next(m for m in agent["volumeMounts"] if m["name"] == config["name"])
    assert app_mount["readOnly"] is True and not agent_mount.get("readOnly")
    probe = agent["startupProbe"]["exec"]["command"]
    assert probe == ["test", "-s", f"{agent_mount['mountPath']}/{written.name}"]
    # One unit per replica; the token Secret and CA ConfigMap are the ones the README makes.
    assert sts["spec"]["replicas"] == 2
    secrets = {v["name"]: v for v in pod["volumes"]}
    assert secrets["tokens"]["secret"]["secretName"] == "web-agent-tokens"
    assert secrets["genconf-ca"]["configMap"]["name"] == "genconf-ca"
    assert pod["securityContext"]["runAsUser"] == 10001  # one user: the file is mode 0600


def test_daemonset_agent_finds_its_unit_by_node_name(tmp_path: Path) -> None:
    path = EXAMPLES / "agent-daemonset.yaml"
    pod, agent = agent_setup(path, "DaemonSet", "nodecfg-agent")
    dirs = volume_dirs(pod, tmp_path)
    (dirs["units"] / "node-a").write_text("nodecfg/0")
    (dirs["tokens"] / "nodecfg-0").write_text("token-of-nodecfg-0")
    env = pod_environment(pod, agent, {"spec.nodeName": "node-a"}, dirs)
    args = build_parser().parse_args(entrypoint.container_argv(["agent"], env))
    assert (args.unit, args.token) == ("nodecfg/0", "token-of-nodecfg-0")
    host = next(v for v in pod["volumes"] if "hostPath" in v)
    assert Path(args.write).parent == dirs[host["name"]]
    assert host["hostPath"]["path"] == "/etc/nodecfg"
    # hostPath needs the privileged level: the namespace says so, and holds nothing else.
    namespace = the_object(path, "DaemonSet", "nodecfg-agent")["metadata"]["namespace"]
    assert pod_security_of(path, namespace) == "privileged"
    assert {o["kind"] for o in objects(path)} == {"Namespace", "DaemonSet"}
    sc = agent["securityContext"]
    assert sc["capabilities"]["drop"] == ["ALL"] and sc["readOnlyRootFilesystem"] is True
    env_missing = pod_environment(pod, agent, {"spec.nodeName": "node-z"}, dirs)
    with pytest.raises(entrypoint.EntrypointError, match="no unit for 'node-z'"):
        entrypoint.container_argv(["agent"], env_missing)
