"""Offline checks of deploy/: the image, the compose stack, the Kubernetes manifests.

Nothing here builds an image or talks to Docker or a cluster: every YAML file must
parse, the Kubernetes manifests must validate against the Kubernetes JSON schemas
(kubernetes-validate, strict: an unknown or misspelt field fails), the pieces must
agree with each other (ports, labels, secret keys, file paths, the image's user),
and every `genconf` command line in deploy/ must parse with the real CLI parser.
`genconf.dev.healthcheck`, which the image and the probes run, is tested against real
servers.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import io
import json
import os
import re
import shlex
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import grpc
import kubernetes_validate
import pytest
import yaml
from grpc_health.v1 import health_pb2
from pymongo.uri_parser import parse_uri
from support.servers import free_port, server_config, wait_serving
from support.tls_certs import CertificateAuthority

from genconf.api.server import SERVICE_NAMES, RunningServer, serve
from genconf.cli.main import build_parser
from genconf.dev import healthcheck

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
K8S_VERSIONS = ("1.30", kubernetes_validate.latest_version())
NAMESPACE = "genconf"
MONGO_HOSTS = [("mongo1", 27017), ("mongo2", 27017), ("mongo3", 27017)]
# The `serve` flags a container deployment relies on (exactly these names).
SERVE_FLAGS = (
    "--mongo-uri",
    "--listen",
    "--admin-token-file",
    "--tls-cert",
    "--tls-key",
    "--tls-client-ca",
    "--metrics-listen",
    "--log-format",
)
SECRET_PLACEHOLDER = "REPLACE-ME"


# -- helpers ------------------------------------------------------------------------------


def _load_entrypoint() -> ModuleType:
    spec = importlib.util.spec_from_file_location("genconf_entrypoint", DEPLOY / "entrypoint.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


entrypoint = _load_entrypoint()


def parse_genconf(argv: Sequence[str]) -> Any:
    """The real CLI parser's namespace for ``argv``; a rejection fails with its message."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return build_parser().parse_args(list(argv))
    except SystemExit:
        pytest.fail(f"genconf rejects {shlex.join(argv)}:\n{err.getvalue()}")


def parse_container_command(argv: Sequence[str], environ: Mapping[str, str]) -> Any:
    """What the image does with ``argv``: the entrypoint's rewrite, then the CLI parser."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            full = entrypoint.with_mongo_uri(argv, environ)
    except SystemExit:
        pytest.fail(f"the image's entrypoint rejects {shlex.join(argv)}:\n{err.getvalue()}")
    return parse_genconf(full)


def parse_healthcheck(command: Sequence[str]) -> Any:
    """The health check's namespace for a ``python -m genconf.dev.healthcheck ...`` command."""
    assert list(command[:3]) == ["python", "-m", "genconf.dev.healthcheck"], command
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return healthcheck.build_parser().parse_args(list(command[3:]))
    except SystemExit:
        pytest.fail(f"genconf.dev.healthcheck rejects {shlex.join(command)}:\n{err.getvalue()}")


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml"))


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str

    def exec_form(self) -> list[str]:
        value = json.loads(self.args)
        assert isinstance(value, list) and all(isinstance(v, str) for v in value), self
        return value


def dockerfile() -> list[Instruction]:
    """The Dockerfile's instructions: comments dropped, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, args = line.partition(" ")
            instructions.append(Instruction(keyword.upper(), " ".join(args.split())))
    return instructions


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    result: list[list[Instruction]] = []
    for ins in instructions:
        if ins.keyword == "FROM":
            result.append([])
        if result:
            result[-1].append(ins)
    return result


def dockerfile_cmd() -> list[str]:
    (cmd,) = [i for i in dockerfile() if i.keyword == "CMD"]
    return cmd.exec_form()


def compose() -> dict[str, Any]:
    (doc,) = documents(DEPLOY / "compose.yaml")
    return doc


def k8s_objects(directory: Path = K8S, recursive: bool = True) -> list[dict[str, Any]]:
    paths = sorted(directory.rglob("*.yaml") if recursive else directory.glob("*.yaml"))
    return [doc for path in paths for doc in documents(path)]


def k8s_object(kind: str, name: str = "genconf") -> dict[str, Any]:
    (found,) = [o for o in k8s_objects() if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def the_container() -> dict[str, Any]:
    (container,) = k8s_object("Deployment")["spec"]["template"]["spec"]["containers"]
    return container


def expanded_args(container: Mapping[str, Any]) -> list[str]:
    """The container's args with $(VAR) replaced as the kubelet does, from its env."""
    configmap = k8s_object("ConfigMap")["data"]
    env: dict[str, str] = {}
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
        else:
            ref = var["valueFrom"]["configMapKeyRef"]
            assert ref["name"] == "genconf"
            env[var["name"]] = configmap[ref["key"]]

    def expand(arg: str) -> str:
        return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env[m.group(1)], arg)

    return [expand(a) for a in container["args"]]


def readme_commands() -> Iterator[tuple[list[str], dict[str, str]]]:
    """Every `genconf` invocation in deploy/README.md's shell blocks: (argv, environment).

    ``.venv/bin/genconf ARGS`` gives ARGS; ``docker run ... genconf:TAG [ARGS]`` gives
    ARGS (or the image's CMD) with the ``-e`` variables as the environment."""
    text = (DEPLOY / "README.md").read_text()
    for block in re.findall(r"^[ \t]*```sh\n(.*?)^[ \t]*```", text, flags=re.S | re.M):
        joined = re.sub(r"\\\n", " ", block)
        for line in joined.splitlines():
            tokens = shlex.split(line, comments=True)
            if not tokens:
                continue
            if tokens[0].endswith("/genconf") or tokens[0] == "genconf":
                yield tokens[1:], {}
            elif tokens[:2] == ["docker", "run"]:
                (image,) = [i for i, t in enumerate(tokens) if re.fullmatch(r"genconf:[\w.-]+", t)]
                env = dict(tokens[i + 1].split("=", 1) for i in range(image) if tokens[i] == "-e")
                yield tokens[image + 1 :] or dockerfile_cmd(), env


# -- every file parses -----------------------------------------------------------------------


def test_every_yaml_file_parses() -> None:
    files = yaml_files()
    names = {p.relative_to(DEPLOY).as_posix() for p in files}
    assert {"compose.yaml", "k8s/deployment.yaml", "k8s/examples/secrets.yaml"} <= names
    for path in files:
        assert documents(path), f"{path} has no YAML document"
        for doc in documents(path):
            assert isinstance(doc, dict), f"{path}: a document is not a mapping"


def test_the_cli_knows_every_serve_flag_the_deployment_uses() -> None:
    """One place that names every missing flag, instead of one failure per command line."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--help"])
    missing = [f for f in SERVE_FLAGS if not re.search(rf"(?<![\w-]){f}(?![\w-])", out.getvalue())]
    assert not missing, f"`genconf serve` does not know {', '.join(missing)}"


# -- the image -----------------------------------------------------------------------------


def test_dockerfile_is_multi_stage_on_slim_python_311() -> None:
    instructions = dockerfile()
    args = dict(i.args.split("=", 1) for i in instructions if i.keyword == "ARG" and "=" in i.args)
    froms = [i.args for i in instructions if i.keyword == "FROM"]
    assert len(froms) >= 2
    images = [re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], f.split()[0]) for f in froms]
    for image in images:
        assert re.fullmatch(r"python:3\.11-slim(-\w+)?", image), image
    builder = froms[0].split()[-1]
    copies = [i.args for i in stages(instructions)[-1] if i.keyword == "COPY"]
    assert any(c.startswith(f"--from={builder} ") for c in copies), copies


def test_dockerfile_installs_the_package_without_the_embedded_extra() -> None:
    runs = " ".join(i.args for i in dockerfile() if i.keyword == "RUN")
    assert re.search(r"pip install \.(\s|$)", runs), runs
    assert "embedded" not in runs


def test_dockerfile_runs_as_a_non_root_user() -> None:
    final = stages(dockerfile())[-1]
    users = [i.args for i in final if i.keyword == "USER"]
    assert users, "the final stage sets no USER: it would run as root"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0, "a numeric non-zero UID (runAsNonRoot checks it)"
    assert not gid or (gid.isdigit() and int(gid) != 0)
    pod = k8s_object("Deployment")["spec"]["template"]["spec"]["securityContext"]
    assert pod["runAsUser"] == int(uid)


def test_dockerfile_exposes_grpc_and_metrics() -> None:
    exposed = {p for i in dockerfile() if i.keyword == "EXPOSE" for p in i.args.split()}
    assert {"50051", "9090"} <= exposed


def test_dockerfile_healthcheck_uses_grpc_health_on_the_served_port() -> None:
    (check,) = [i for i in dockerfile() if i.keyword == "HEALTHCHECK"]
    options, _, command = check.args.partition(" CMD ")
    assert "--timeout=" in options
    args = parse_healthcheck(json.loads(command))
    served = parse_container_command(dockerfile_cmd(), {"GENCONF_MONGO_URI": "mongodb://m/"})
    assert port_of(args.address) == port_of(served.listen) == 50051


def test_dockerfile_entrypoint_and_cmd() -> None:
    instructions = dockerfile()
    (ep,) = [i for i in instructions if i.keyword == "ENTRYPOINT"]
    assert ep.exec_form()[0] == "python"
    script = ep.exec_form()[1]
    copies = [i.args.split() for i in instructions if i.keyword == "COPY"]
    assert ["deploy/entrypoint.py", script] in copies
    uri = "mongodb://db1:27017,db2:27017/?replicaSet=rs0"
    args = parse_container_command(dockerfile_cmd(), {"GENCONF_MONGO_URI": uri})
    assert args.command == "serve"
    assert args.mongo_uri == uri
    assert args.listen == "0.0.0.0:50051"
    assert args.metrics_listen == "0.0.0.0:9090"
    assert args.log_format == "json"


def test_dockerignore_keeps_what_the_build_copies() -> None:
    patterns = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert "*" in patterns  # nothing else (.venv, .genconf-data, .git) goes to the daemon
    for ins in dockerfile():
        if ins.keyword == "COPY" and not ins.args.startswith("--from"):
            *sources, _ = ins.args.split()
            for src in sources:
                assert (ROOT / src).exists(), src
                assert f"!{src.rstrip('/')}" in patterns or f"!{src.rstrip('/')}/" in patterns


# -- the entrypoint -------------------------------------------------------------------------


def test_entrypoint_takes_the_mongo_uri_from_the_environment() -> None:
    env = {"GENCONF_MONGO_URI": "mongodb://a,b,c/?replicaSet=rs0"}
    assert entrypoint.with_mongo_uri(["serve", "--listen", "0.0.0.0:1"], env) == [
        "serve",
        "--listen",
        "0.0.0.0:1",
        "--mongo-uri",
        "mongodb://a,b,c/?replicaSet=rs0",
    ]


def test_entrypoint_leaves_an_explicit_uri_and_other_commands_alone() -> None:
    env = {"GENCONF_MONGO_URI": "mongodb://from-env/"}
    explicit = ["serve", "--mongo-uri", "mongodb://given/"]
    assert entrypoint.with_mongo_uri(explicit, env) == explicit
    assert entrypoint.with_mongo_uri(["--log-level", "debug", "branch", "list"], env) == [
        "--log-level",
        "debug",
        "branch",
        "list",
    ]


def test_entrypoint_refuses_serve_without_any_uri(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        entrypoint.with_mongo_uri(["serve"], {"GENCONF_MONGO_URI": "  "})
    assert stopped.value.code == 2
    assert "GENCONF_MONGO_URI" in capsys.readouterr().err


# -- compose ---------------------------------------------------------------------------------


def test_compose_runs_a_three_node_mongodb_60_replica_set() -> None:
    services = compose()["services"]
    for host, _ in MONGO_HOSTS:
        node = services[host]
        assert node["image"] == "mongo:6.0"
        command = node["command"]
        assert command[command.index("--replSet") + 1] == "rs0"
        assert "mongosh" in node["healthcheck"]["test"]


def test_compose_init_initiates_rs0_with_the_three_members() -> None:
    init = compose()["services"]["mongo-init"]
    assert init["image"] == "mongo:6.0"
    assert init["restart"] == "no"
    assert init["depends_on"] == {host: {"condition": "service_healthy"} for host, _ in MONGO_HOSTS}
    script = init["command"][-1]
    assert "rs.initiate(config)" in script
    assert re.search(r'_id: "rs0"', script)
    members = re.findall(r'host: "([\w-]+):(\d+)"', script)
    assert [(h, int(p)) for h, p in members] == MONGO_HOSTS
    assert "$" not in script  # compose would interpolate it


def test_compose_runs_two_genconf_replicas_from_the_dockerfile() -> None:
    doc = compose()
    replicas = {n: s for n, s in doc["services"].items() if s.get("image") == "genconf:local"}
    assert len(replicas) == 2
    published = []
    for name, svc in replicas.items():
        build = svc["build"]
        assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == (
            DEPLOY / "Dockerfile"
        )
        assert svc["depends_on"] == {"mongo-init": {"condition": "service_completed_successfully"}}
        check = parse_healthcheck(svc["healthcheck"]["test"][1:])
        args = parse_container_command(svc["command"], svc["environment"])
        assert port_of(check.address) == port_of(args.listen) == 50051, name
        uri = parse_uri(args.mongo_uri)
        assert uri["nodelist"] == MONGO_HOSTS
        assert uri["options"]["replicaSet"] == "rs0"
        (secret,) = svc["secrets"]
        assert secret in doc["secrets"]
        assert args.admin_token_file == f"/run/secrets/{secret}"
        published += svc.get("ports", [])
    assert sorted(published) == ["127.0.0.1:50051:50051", "127.0.0.1:9090:9090"]


def test_compose_admin_token_secret_is_a_git_ignored_file() -> None:
    (secret,) = compose()["secrets"].values()
    path = (DEPLOY / secret["file"]).resolve()
    assert path.parent == DEPLOY / "secrets"
    assert (DEPLOY / "secrets" / ".gitignore").read_text().splitlines()[1:] == [
        "*",
        "!.gitignore",
    ]


# -- Kubernetes ------------------------------------------------------------------------------


def test_k8s_manifests_validate_against_the_kubernetes_schemas() -> None:
    objects = k8s_objects()
    assert {o["kind"] for o in objects} == {
        "Namespace",
        "ConfigMap",
        "Secret",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
    }
    for obj in objects:
        for version in K8S_VERSIONS:
            checked = kubernetes_validate.validate(obj, version, strict=True)
            assert checked == ".".join(version.split(".")[:2])  # that version's schemas


def test_the_schema_check_rejects_a_misspelt_field() -> None:
    """The validator is strict: a typo in a probe would otherwise pass unnoticed."""
    deployment = copy.deepcopy(k8s_object("Deployment"))
    probe = deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    probe["periodSecond"] = probe.pop("periodSeconds")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[0], strict=True)


def test_k8s_objects_live_in_the_genconf_namespace() -> None:
    assert k8s_object("Namespace")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == (
        "restricted"
    )
    for obj in k8s_objects():
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == NAMESPACE, obj["kind"]


def test_secrets_are_placeholders_kept_out_of_the_applied_directory() -> None:
    applied = k8s_objects(K8S, recursive=False)
    assert "Secret" not in {o["kind"] for o in applied}
    secrets = [o for o in k8s_objects() if o["kind"] == "Secret"]
    assert {s["metadata"]["name"] for s in secrets} == {"genconf-admin-token", "genconf-tls"}
    for secret in secrets:
        assert "data" not in secret
        for key, value in secret["stringData"].items():
            assert value.startswith(SECRET_PLACEHOLDER), f"{key} does not look fake"
    guide = (DEPLOY / "README.md").read_text()
    assert "kubectl -n genconf create secret generic genconf-admin-token" in guide
    assert "kubectl -n genconf create secret generic genconf-tls --type=kubernetes.io/tls" in guide


def test_deployment_replicas_labels_and_disruption_budget() -> None:
    deployment = k8s_object("Deployment")["spec"]
    assert deployment["replicas"] == 2
    pod_labels = deployment["template"]["metadata"]["labels"]
    selector = deployment["selector"]["matchLabels"]
    assert selector.items() <= pod_labels.items()
    assert k8s_object("Service")["spec"]["selector"].items() <= pod_labels.items()
    pdb = k8s_object("PodDisruptionBudget")["spec"]
    assert pdb["minAvailable"] == 1
    assert pdb["selector"]["matchLabels"].items() <= pod_labels.items()


def test_deployment_is_non_root_with_a_read_only_root_filesystem() -> None:
    pod = k8s_object("Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    container = the_container()["securityContext"]
    assert container["runAsNonRoot"] is True
    assert container["readOnlyRootFilesystem"] is True
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"]["drop"] == ["ALL"]
    mounts = {m["mountPath"] for m in the_container()["volumeMounts"]}
    assert "/tmp" in mounts  # the one writable place


def test_deployment_resources_follow_the_sizing() -> None:
    assert the_container()["resources"] == {
        "requests": {"cpu": "250m", "memory": "512Mi"},
        "limits": {"cpu": "2", "memory": "1Gi"},
    }
    text = (K8S / "deployment.yaml").read_text()
    assert "10,000 idle watch streams" in text and "300 MB RSS" in text


def test_deployment_args_parse_and_point_into_mounted_secrets() -> None:
    container = the_container()
    args = parse_genconf(expanded_args(container))
    assert args.command == "serve"
    assert args.listen == "0.0.0.0:50051"
    assert args.metrics_listen == "0.0.0.0:9090"
    assert args.log_format == "json"
    assert parse_uri(args.mongo_uri)["options"]["replicaSet"] == "rs0"
    volumes = {
        v["name"]: v for v in k8s_object("Deployment")["spec"]["template"]["spec"]["volumes"]
    }
    secrets = {s["metadata"]["name"]: s for s in k8s_objects() if s["kind"] == "Secret"}
    files: set[str] = set()
    for mount in container["volumeMounts"]:
        source = volumes[mount["name"]].get("secret")
        if source:
            for item in source["items"]:
                assert item["key"] in secrets[source["secretName"]]["stringData"]
                files.add(f"{mount['mountPath']}/{item['path']}")
    assert {args.admin_token_file, args.tls_cert, args.tls_key} <= files


def test_probes_check_grpc_health_on_the_grpc_container_port() -> None:
    container = the_container()
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    served = parse_genconf(expanded_args(container))
    assert ports["grpc"] == port_of(served.listen) == 50051
    assert served.tls_cert, "the deployment serves TLS: the probes must check over TLS"
    assert ports["metrics"] == port_of(served.metrics_listen)
    mounts = [m["mountPath"] for m in container["volumeMounts"]]
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        probe = container[kind]
        check = parse_healthcheck(probe["exec"]["command"])
        assert port_of(check.address) == ports["grpc"], kind
        assert check.timeout < probe["timeoutSeconds"], kind
        assert check.tls_ca and any(check.tls_ca.startswith(m + "/") for m in mounts), kind
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120  # `serve`'s sync limit
    # Readiness follows the change stream (whole-server status); liveness must not,
    # or a MongoDB outage would restart every replica.
    assert parse_healthcheck(container["readinessProbe"]["exec"]["command"]).service == ""
    live = parse_healthcheck(container["livenessProbe"]["exec"]["command"]).service
    assert live in SERVICE_NAMES, live


def test_service_exposes_grpc_and_metrics_ports_of_the_container() -> None:
    names = {p["name"] for p in the_container()["ports"]}
    ports = {p["name"]: p for p in k8s_object("Service")["spec"]["ports"]}
    assert ports.keys() == {"grpc", "metrics"}
    assert (ports["grpc"]["port"], ports["metrics"]["port"]) == (50051, 9090)
    assert {p["targetPort"] for p in ports.values()} <= names
    annotations = k8s_object("Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == ports["metrics"]["port"]


def test_configmap_holds_the_non_secret_settings() -> None:
    data = k8s_object("ConfigMap")["data"]
    assert data.keys() == {"mongo-uri", "log-format"}
    assert len(parse_uri(data["mongo-uri"])["nodelist"]) == 3
    refs = {
        v["valueFrom"]["configMapKeyRef"]["key"] for v in the_container()["env"] if "valueFrom" in v
    }
    assert refs == data.keys()


# -- README ----------------------------------------------------------------------------------


def test_every_genconf_command_in_the_readme_parses() -> None:
    commands = list(readme_commands())
    assert len(commands) >= 3
    served = [parse_container_command(argv, env) for argv, env in commands]
    serve_commands = [a for a in served if a.command == "serve"]
    assert len(serve_commands) >= 2
    for args in serve_commands:
        assert args.mongo_uri and parse_uri(args.mongo_uri)["options"]["replicaSet"]
    readme = (DEPLOY / "README.md").read_text()
    assert "docker build -f deploy/Dockerfile" in readme
    assert "docker compose -f deploy/compose.yaml up" in readme
    assert "kubectl apply -f deploy/k8s/" in readme
    assert "offline only" in readme


# -- genconf.dev.healthcheck against real servers -------------------------------------------------


def _env_without_tls() -> dict[str, str]:
    env = dict(os.environ)
    env.pop(healthcheck.ENV_TLS_CA, None)
    env.pop(healthcheck.ENV_SERVER_NAME, None)
    return env


async def run_healthcheck(*args: str, env: Mapping[str, str] | None = None) -> tuple[int, str]:
    """Exit code and stderr of ``python -m genconf.dev.healthcheck ARGS`` (without blocking
    the event loop that serves the server under test)."""
    done = await anyio.run_process(
        [sys.executable, "-m", "genconf.dev.healthcheck", *args],
        check=False,
        env=dict(env) if env is not None else _env_without_tls(),
    )
    return done.returncode, done.stderr.decode()


async def test_healthcheck_passes_on_a_serving_server(srv: RunningServer) -> None:
    code, err = await run_healthcheck(srv.address)
    assert (code, err) == (0, "")


async def test_healthcheck_fails_while_not_serving(srv: RunningServer) -> None:
    await srv.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    code, err = await run_healthcheck(srv.address)
    assert code == 1
    assert "NOT_SERVING" in err


async def test_healthcheck_fails_quickly_on_a_closed_port() -> None:
    started = time.monotonic()
    code, err = await run_healthcheck(f"127.0.0.1:{free_port()}", "--timeout", "3")
    assert code == 1
    assert "UNAVAILABLE" in err
    assert time.monotonic() - started < 3


async def test_healthcheck_over_tls(mongo_uri: str, db_name: str, tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path, "deploy")
    server_cert = ca.server()  # covers 127.0.0.1 and localhost
    config = server_config(
        mongo_uri, db_name, tls_cert=server_cert.cert_path, tls_key=server_cert.key_path
    )
    async with serve(config) as running:
        address, ca_file = running.address, str(ca.cert_path)
        await wait_serving(address, credentials=grpc.ssl_channel_credentials(ca.cert))
        assert await run_healthcheck(address, "--tls-ca", ca_file) == (0, "")
        assert (await run_healthcheck(address, "--tls-ca", ca_file, "--server-name", "localhost"))[
            0
        ] == 0
        wrong_name = await run_healthcheck(
            address, "--tls-ca", ca_file, "--server-name", "elsewhere.example"
        )
        assert wrong_name[0] == 1
        plaintext = await run_healthcheck(address, "--timeout", "2")
        assert plaintext[0] == 1
        from_env = {**_env_without_tls(), healthcheck.ENV_TLS_CA: ca_file}
        assert (await run_healthcheck(address, env=from_env))[0] == 0
