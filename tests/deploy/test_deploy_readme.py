"""deploy/README.md, followed to the end: every command of its shell blocks, in order.

Each command runs for real with bash in a scratch directory laid out like the
repository (``.venv/bin/genconf``, ``deploy/secrets/``), as one terminal session (what
a command exports, the next one sees), unless it is in ``NOT_RUN`` below because it
needs a container engine, a Kubernetes cluster or changes to this machine. Some of
those have a stand-in that does here what the command would do there: a genconf
server for `docker compose up` and for `kubectl port-forward svc/genconf`, the
image's entrypoint run with a pod's environment and volumes for `kubectl rollout
status` of the agent examples, the application container's command for `kubectl
port-forward pod/web-0`. `kubectl create secret|configmap` runs with
``--dry-run=client -o yaml`` (the `genconf token create` inside it for real), and the
stand-ins use what it printed.

A command added to the README runs here, or fails, unless it is added to ``NOT_RUN``,
whose every entry the README's "What was run here" section must name.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import subprocess
import sys
import textwrap
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import yaml
from cryptography import x509
from deploy_kit import (
    EXAMPLES,
    README,
    SERVICE_NAME,
    admin_client,
    agent_container,
    clean_environ,
    entrypoint_process,
    pod_environment,
    service_server,
    the_object,
)
from support.procs import first_line, stop_process, tail
from support.servers import applied, server_config, wait_serving

from genconf.api.server import serve
from genconf.client import Client

ENGINE = "a container engine"
CLUSTER = "a Kubernetes cluster"
MACHINE = "changes to this machine"
GENCONF = str(Path(sys.executable).with_name("genconf"))
COMMAND_TIMEOUT = 60.0

# Every command of deploy/README.md that is not run here: why, and the name the
# README's "What was run here" section gives it. Exact text (comments dropped,
# whitespace collapsed), so a new one cannot slip in under an old entry.
NOT_RUN: dict[str, tuple[str, str]] = {
    "docker build -f deploy/Dockerfile -t genconf:0.1.0 .": (ENGINE, "docker build"),
    "docker run --rm -p 127.0.0.1:50051:50051 -p 127.0.0.1:9090:9090 -e "
    "GENCONF_MONGO_URI='mongodb://db1:27017,db2:27017,db3:27017/?replicaSet=rs0' -e "
    'GENCONF_ADMIN_TOKEN="$(cat deploy/secrets/genconf-admin-token)" genconf:0.1.0 serve '
    "--listen 0.0.0.0:50051 --metrics-listen 0.0.0.0:9090 --log-format json "
    "--insecure-plaintext": (ENGINE, "docker run"),
    'docker run --rm -p 127.0.0.1:50051:50051 -v "$PWD/deploy/secrets:/run/secrets:ro" -v '
    '"$PWD/certs:/certs:ro" -e GENCONF_TLS_CA=/certs/ca.crt -e '
    "GENCONF_TLS_SERVER_NAME=genconf.genconf.svc genconf:0.1.0 serve --mongo-uri "
    "'mongodb://db1:27017,db2:27017,db3:27017/?replicaSet=rs0' --listen 0.0.0.0:50051 "
    "--metrics-listen 0.0.0.0:9090 --log-format json --admin-token-file "
    "/run/secrets/genconf-admin-token --tls-cert /certs/server.crt --tls-key "
    "/certs/server.key": (ENGINE, "docker run"),
    "docker compose -f deploy/compose.yaml up --build -d": (ENGINE, "docker compose"),
    "docker compose -f deploy/compose.yaml ps": (ENGINE, "docker compose"),
    "docker compose -f deploy/compose.yaml down": (ENGINE, "docker compose"),
    "docker run -d --name web-0-agent --no-healthcheck -v /etc/web:/config -v "
    '"$PWD/ca.crt:/etc/genconf/ca.crt:ro" -e GENCONF_SERVER=genconf.example.com:50051 -e '
    'GENCONF_TLS_CA=/etc/genconf/ca.crt -e GENCONF_TOKEN="$WEB_0_TOKEN" genconf:0.1.0 agent '
    "--unit web/0 --write /config/config.json": (ENGINE, "docker run"),
    "kubectl apply -f deploy/examples/cert-manager.yaml": (CLUSTER, "kubectl apply"),
    "kubectl -n genconf wait --for=condition=Ready certificate/genconf --timeout=2m": (
        CLUSTER,
        "kubectl wait",
    ),
    "kubectl -n genconf get secret genconf-tls -o jsonpath='{.data.ca\\.crt}' | base64 -d "
    "> ca.crt": (CLUSTER, "kubectl get"),
    "kubectl apply -f deploy/examples/mongodb.yaml": (CLUSTER, "kubectl apply"),
    "kubectl -n mongodb wait --for=condition=complete job/mongo-init --timeout=5m": (
        CLUSTER,
        "kubectl wait",
    ),
    "kubectl -n mongodb exec mongo-0 -- mongosh --quiet --eval "
    "'rs.status().members.map(m => m.name + \" \" + m.stateStr)'": (CLUSTER, "kubectl exec"),
    "kubectl apply -f deploy/k8s/00-namespace.yaml": (CLUSTER, "kubectl apply"),
    "kubectl apply -f deploy/k8s/": (CLUSTER, "kubectl apply"),
    "kubectl -n genconf rollout status deployment/genconf": (CLUSTER, "kubectl rollout"),
    'export GENCONF_TOKEN="$(kubectl -n genconf get secret genconf-admin-token -o '
    "jsonpath='{.data.admin-token}' | base64 -d)\"": (CLUSTER, "kubectl get"),
    "kubectl -n genconf port-forward svc/genconf 50051:50051 &": (CLUSTER, "kubectl port-forward"),
    "kubectl apply -f deploy/examples/agent-sidecar.yaml": (CLUSTER, "kubectl apply"),
    "kubectl -n web rollout status statefulset/web": (CLUSTER, "kubectl rollout"),
    "kubectl -n web port-forward pod/web-0 8080:8080 &": (CLUSTER, "kubectl port-forward"),
    "kubectl apply -f deploy/examples/agent-daemonset.yaml": (CLUSTER, "kubectl apply"),
    "kubectl get nodes -o name": (CLUSTER, "kubectl get"),
    "kubectl -n nodecfg rollout status daemonset/nodecfg-agent": (CLUSTER, "kubectl rollout"),
    "sudo python3 -m venv /opt/genconf": (MACHINE, "sudo python3"),
    "sudo /opt/genconf/bin/pip install .": (MACHINE, "sudo /opt/genconf/bin/pip"),
    "sudo install -d -m 0755 /etc/genconf": (MACHINE, "sudo install"),
    "sudo install -m 0600 deploy/agent/agent.env /etc/genconf/agent.env": (
        MACHINE,
        "sudo install",
    ),
    "sudo install -m 0644 ca.crt /etc/genconf/ca.crt": (MACHINE, "sudo install"),
    "sudo install -m 0644 deploy/agent/genconf-agent.service "
    "/etc/systemd/system/genconf-agent.service": (MACHINE, "sudo install"),
    "sudo systemctl daemon-reload": (MACHINE, "sudo systemctl"),
    "sudo systemctl enable --now genconf-agent": (MACHINE, "sudo systemctl"),
    "journalctl -u genconf-agent -f": (MACHINE, "journalctl"),
}


# -- the README's commands ---------------------------------------------------------------------


def strip_comment(line: str) -> str:
    """``line`` without a trailing shell comment (a # outside quotes, after a blank)."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def readme_commands() -> list[str]:
    """Every command of the README's ```sh blocks, in order: continuation lines
    joined, comments dropped, whitespace collapsed."""
    text = README.read_text()
    commands = []
    for block in re.findall(r"^[ \t]*```sh\n(.*?)^[ \t]*```", text, flags=re.S | re.M):
        joined = re.sub(r"\\\n", "", textwrap.dedent(block))
        for line in joined.splitlines():
            command = " ".join(strip_comment(line).split())
            if command:
                commands.append(command)
    return commands


def what_was_run_section() -> str:
    text = README.read_text()
    start = text.index("## What was run here, and what was not")
    return text[start : text.index("\n## ", start + 1)]


def test_every_command_not_run_is_listed_and_named_in_the_readme() -> None:
    commands = readme_commands()
    stale = [c for c in NOT_RUN if c not in commands]
    assert not stale, f"NOT_RUN lists commands the README no longer shows: {stale}"
    section = " ".join(what_was_run_section().split())
    for why, name in set(NOT_RUN.values()):
        assert f"`{name}`" in section, f"the README does not say that `{name}` needs {why}"
    for why in (ENGINE, CLUSTER):
        assert f"they need {why}" in section
    assert "the image has never been built, and the compose stack never started, here" in section


# -- the session -------------------------------------------------------------------------------


@dataclass
class Ran:
    command: str
    out: str


@dataclass
class Session:
    """One terminal following the README: a directory, an environment, the servers
    and pods standing in for the cluster and the engine."""

    mongo_uri: str
    db_name: str
    cwd: Path
    env: dict[str, str]
    stack: AsyncExitStack
    ran: list[Ran] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    created: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    server: str | None = None  # what 127.0.0.1:50051 reaches now
    server_stack: AsyncExitStack | None = None
    http: str | None = None  # what 127.0.0.1:8080 reaches now
    admin: Client | None = None
    agents: dict[str, Path] = field(default_factory=dict)  # unit -> the file its agent writes

    # -- running a command ------------------------------------------------------------------

    def substituted(self, command: str) -> str:
        if self.server:
            command = command.replace("127.0.0.1:50051", self.server)
        if self.http:
            command = command.replace("127.0.0.1:8080", self.http)
        return command

    async def bash(self, command: str) -> str:
        """``command`` in bash, in the session's directory and environment; what it
        exports stays for the next one. It must succeed."""
        env_file = self.cwd.parent / "env.after"
        script = f"set -o pipefail\n{command}\nstatus=$?\nenv -0 > {env_file}\nexit $status\n"
        with anyio.fail_after(COMMAND_TIMEOUT):
            done = await anyio.run_process(
                ["bash", "-c", script], cwd=self.cwd, env=self.env, check=False
            )
        out, err = done.stdout.decode(), done.stderr.decode()
        assert done.returncode == 0, f"{command}\nexited {done.returncode}:\n{err}{out}"
        pairs = [p.split("=", 1) for p in env_file.read_text().split("\0") if "=" in p]
        self.env = {k: v for k, v in pairs if k not in ("_", "SHLVL", "PWD", "OLDPWD")}
        return out

    async def run(self, command: str) -> None:
        if command in NOT_RUN:
            stand_in = STAND_INS.get(command)
            if stand_in is None:
                self.skipped.append(command)
            else:
                await stand_in(self, command)
            return
        line = self.substituted(command)
        if re.match(r"kubectl (-n \S+ )?create (secret|configmap) ", line):
            out = await self.bash(f"{line} --dry-run=client -o yaml")
            obj = yaml.safe_load(out)
            meta = obj["metadata"]
            self.created[(obj["kind"], meta.get("namespace", ""), meta["name"])] = obj
        else:
            out = await self.bash(line)
        self.ran.append(Ran(command, out))

    def made(self, kind: str, namespace: str, name: str) -> dict[str, str]:
        """The data of a Secret or ConfigMap a README command created (decoded)."""
        obj = self.created[(kind, namespace, name)]
        data = obj["data"]
        if kind == "Secret":
            return {k: base64.b64decode(v).decode() for k, v in data.items()}
        return dict(data)

    def volume(self, name: str, files: dict[str, str]) -> Path:
        directory = self.cwd.parent / "volumes" / name
        directory.mkdir(parents=True)
        for key, value in files.items():
            (directory / key).write_text(value)
        return directory

    # -- stand-ins -------------------------------------------------------------------------

    async def stop_server(self) -> None:
        if self.server_stack is not None:
            await self.server_stack.aclose()
        self.server, self.server_stack, self.admin = None, None, None

    async def compose_up(self, command: str) -> None:
        """The compose stack's genconf1: authentication on, the token from the file."""
        token = (self.cwd / "deploy/secrets/genconf-admin-token").read_text()
        assert re.fullmatch(r"[0-9a-f]{64}", token), "the README's printf made the token"
        stack = AsyncExitStack()
        srv = await stack.enter_async_context(
            serve(server_config(self.mongo_uri, self.db_name, admin_token=token))
        )
        await wait_serving(srv.address)
        self.server, self.server_stack = srv.address, stack

    async def compose_down(self, command: str) -> None:
        await self.stop_server()

    async def port_forward_server(self, command: str) -> None:
        """The Deployment as a port-forward reaches it: on 127.0.0.1, TLS with the
        certificate of Secret genconf-tls, the admin token of Secret genconf-admin-token."""
        tls = self.made("Secret", "genconf", "genconf-tls")
        token = self.made("Secret", "genconf", "genconf-admin-token")["admin-token"]
        files = self.volume("genconf-tls", tls)
        stack = AsyncExitStack()
        self.server = await stack.enter_async_context(
            service_server(
                self.mongo_uri,
                self.db_name,
                cert=files / "tls.crt",
                key=files / "tls.key",
                ca=tls["ca.crt"].encode(),
                admin_token=token,
            )
        )
        self.admin = await stack.enter_async_context(
            admin_client(self.server, files / "ca.crt", token)
        )
        self.server_stack = stack
        # The certificate does not name 127.0.0.1: without the server name, refused.
        plain = await anyio.run_process(
            [GENCONF, "--server", self.server, "--tls-ca", "ca.crt", "app", "list"],
            cwd=self.cwd,
            env={**self.env, "GENCONF_TOKEN": token},
            check=False,
        )
        assert plain.returncode == 1 and b"UNAVAILABLE" in plain.stderr, plain

    async def admin_token_from_secret(self, command: str) -> None:
        """The README's command, reading the dry-run Secret instead of the cluster's:
        the same jsonpath and base64 -d."""
        token = self.made("Secret", "genconf", "genconf-admin-token")["admin-token"]
        get = "kubectl -n genconf get secret genconf-admin-token"
        assert get in command
        local = (
            "kubectl -n genconf create secret generic genconf-admin-token "
            f"--from-literal=admin-token={token} --dry-run=client"
        )
        await self.bash(command.replace(get, local))
        assert self.env["GENCONF_TOKEN"] == token
        self.ran.append(Ran(command, ""))

    async def start_pod_agent(
        self, path: Path, kind: str, name: str, fields: dict[str, str], volumes: dict[str, Path]
    ) -> Path:
        """One pod's agent: the image's entrypoint with the pod's environment and
        volumes, GENCONF_SERVER pointed at the port-forwarded server (and the
        certificate checked against the Service's name); the file it writes."""
        workload = the_object(path, kind, name)
        pod = workload["spec"]["template"]["spec"]
        agent = agent_container(pod)
        env = pod_environment(pod, agent, fields, volumes)
        assert env["GENCONF_SERVER"] == f"{SERVICE_NAME}:50051"
        assert self.server is not None
        env.update(GENCONF_SERVER=self.server, GENCONF_TLS_SERVER_NAME=SERVICE_NAME)
        env["GENCONF_MAX_BACKOFF"] = "0.3"
        pod_name = fields.get("metadata.name") or fields["spec.nodeName"]
        log = self.cwd.parent / f"{pod_name}.log"
        process_env = {**clean_environ(), "XDG_CONFIG_HOME": self.env["XDG_CONFIG_HOME"], **env}
        await self.stack.enter_async_context(
            entrypoint_process(process_env, *agent["args"], log=log)
        )
        return Path(env["GENCONF_WRITE"])

    async def wait_applied(self, unit: str, log: Path) -> None:
        assert self.admin is not None
        config = await self.admin.get_config(unit)
        try:
            await applied(self.admin, unit, config.hash)
        except TimeoutError:
            raise AssertionError(f"the agent of {unit} reported nothing:\n{tail(log)}") from None

    async def sidecar_rollout(self, command: str) -> None:
        """The StatefulSet's pods web-0, web-1: each agent writes its emptyDir."""
        path = EXAMPLES / "agent-sidecar.yaml"
        sts = the_object(path, "StatefulSet", "web")
        tokens = self.volume("web-tokens", self.made("Secret", "web", "web-agent-tokens"))
        ca = self.volume("web-ca", self.made("ConfigMap", "web", "genconf-ca"))
        for i in range(sts["spec"]["replicas"]):
            pod = f"web-{i}"
            config = self.volume(f"{pod}-config", {})
            volumes = {"tokens": tokens, "genconf-ca": ca, "config": config}
            self.agents[f"web/{i}"] = await self.start_pod_agent(
                path, "StatefulSet", "web", {"metadata.name": pod}, volumes
            )
            await self.wait_applied(f"web/{i}", self.cwd.parent / f"{pod}.log")

    async def sidecar_port_forward(self, command: str) -> None:
        """web-0's application container (its command, on 127.0.0.1 and a free port)
        serving web-0's emptyDir."""
        sts = the_object(EXAMPLES / "agent-sidecar.yaml", "StatefulSet", "web")
        (app,) = sts["spec"]["template"]["spec"]["containers"]
        argv = list(app["command"])
        assert argv[:3] == ["python", "-m", "http.server"] and argv[3] == "8080"
        directory = self.agents["web/0"].parent
        argv = [sys.executable, *argv[1:3], "0", "--bind", "127.0.0.1"]
        argv += ["--directory", str(directory)]
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**clean_environ(), "PYTHONUNBUFFERED": "1"},
        )
        self.stack.push_async_callback(stop_process, proc)
        ready = await first_line(proc, COMMAND_TIMEOUT)  # Serving HTTP on 127.0.0.1 port N ...
        port = re.search(r"port (\d+)", ready)
        assert port, ready
        self.http = f"127.0.0.1:{port[1]}"

    async def daemonset_rollout(self, command: str) -> None:
        """A pod on each node of ConfigMap nodecfg-units: each agent finds its unit by
        node name and writes the node's /etc/nodecfg."""
        path = EXAMPLES / "agent-daemonset.yaml"
        units = self.made("ConfigMap", "nodecfg", "nodecfg-units")
        unit_dir = self.volume("nodecfg-units", units)
        tokens = self.volume(
            "nodecfg-tokens", self.made("Secret", "nodecfg", "nodecfg-agent-tokens")
        )
        ca = self.volume("nodecfg-ca", self.made("ConfigMap", "nodecfg", "genconf-ca"))
        for node, unit in units.items():
            volumes = {
                "units": unit_dir,
                "tokens": tokens,
                "genconf-ca": ca,
                "nodecfg": self.volume(f"{node}-etc-nodecfg", {}),
            }
            self.agents[unit] = await self.start_pod_agent(
                path, "DaemonSet", "nodecfg-agent", {"spec.nodeName": node}, volumes
            )
            await self.wait_applied(unit, self.cwd.parent / f"{node}.log")


STAND_INS: dict[str, Callable[[Session, str], Awaitable[None]]] = {
    "docker compose -f deploy/compose.yaml up --build -d": Session.compose_up,
    "docker compose -f deploy/compose.yaml down": Session.compose_down,
    "kubectl -n genconf port-forward svc/genconf 50051:50051 &": Session.port_forward_server,
    'export GENCONF_TOKEN="$(kubectl -n genconf get secret genconf-admin-token -o '
    "jsonpath='{.data.admin-token}' | base64 -d)\"": Session.admin_token_from_secret,
    "kubectl -n web rollout status statefulset/web": Session.sidecar_rollout,
    "kubectl -n web port-forward pod/web-0 8080:8080 &": Session.sidecar_port_forward,
    "kubectl -n nodecfg rollout status daemonset/nodecfg-agent": Session.daemonset_rollout,
}


def test_every_stand_in_stands_in_for_a_command_not_run() -> None:
    assert set(STAND_INS) <= set(NOT_RUN)


def scratch_checkout(root: Path) -> Path:
    """A directory laid out like the repository for the README's relative paths."""
    cwd = root / "checkout"
    (cwd / "deploy" / "secrets").mkdir(parents=True)
    (cwd / ".venv" / "bin").mkdir(parents=True)
    (cwd / ".venv" / "bin" / "genconf").symlink_to(GENCONF)
    return cwd


async def test_following_the_readme_to_the_end(
    mongo_uri: str, db_name: str, tmp_path: Path
) -> None:
    cwd = scratch_checkout(tmp_path)
    bin_dir = tmp_path / "bin"  # `genconf` on PATH, as after installing it
    bin_dir.mkdir()
    (bin_dir / "genconf").symlink_to(GENCONF)
    env = clean_environ(XDG_CONFIG_HOME=str(tmp_path / "xdg"), TERM="dumb")
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    commands = readme_commands()
    async with AsyncExitStack() as stack:
        session = Session(mongo_uri, db_name, cwd, env, stack)
        stack.push_async_callback(session.stop_server)
        for command in commands:
            await session.run(command)

        outputs = {r.command: r.out for r in session.ran}
        ran = [r.command for r in session.ran]
        assert [c for c in commands if c not in NOT_RUN] == [c for c in ran if c not in NOT_RUN], (
            "every other command ran, in order"
        )
        # The openssl recipe made a certificate for the Service's names only.
        assert outputs["openssl verify -CAfile ca.crt server.crt"] == "server.crt: OK\n"
        cert = x509.load_pem_x509_certificate((cwd / "server.crt").read_bytes())
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert names.get_values_for_type(x509.DNSName) == [
            "genconf",
            "genconf.genconf",
            "genconf.genconf.svc",
            "genconf.genconf.svc.cluster.local",
        ]
        assert names.get_values_for_type(x509.IPAddress) == []
        # Through the port-forward, with --tls-server-name and from the environment.
        apps = "genconf --server 127.0.0.1:50051 --tls-ca ca.crt --tls-server-name "
        assert f"{apps}genconf.genconf.svc app list" in outputs
        assert session.env["GENCONF_TLS_SERVER_NAME"] == SERVICE_NAME
        # The agents: web/0's file served by its application, each node's file written.
        served = outputs["curl -s 127.0.0.1:8080/config.json"]
        assert json.loads(served) == {"greeting": "hello"}
        assert json.loads(session.agents["web/1"].read_text()) == {"greeting": "hello"}
        for unit in ("nodecfg/0", "nodecfg/1"):
            assert json.loads(session.agents[unit].read_text()) == {"log_level": "info"}
        assert set(session.agents) == {"web/0", "web/1", "nodecfg/0", "nodecfg/1"}
        # The Secrets hold one token per unit, named as the pods look them up.
        assert set(session.made("Secret", "web", "web-agent-tokens")) == {"web-0", "web-1"}
        skipped = set(NOT_RUN) - set(STAND_INS)
        assert set(session.skipped) == skipped
