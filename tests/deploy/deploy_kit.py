"""What the deploy/ tests share: the files, the image's entrypoint loaded as a module,
a TLS server whose certificate names the Kubernetes Service (not 127.0.0.1), the
agent entrypoint as a child process, and waiting for an agent's report.

A plain module (not a conftest): the tests beside it import it as
``from deploy_kit import ...``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from support.procs import stop_process
from support.servers import server_config, wait_serving_as
from support.tls_certs import CertificateAuthority, Issued

from genconf.api.server import serve
from genconf.client import Client

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
README = DEPLOY / "README.md"
ENTRYPOINT = DEPLOY / "entrypoint.py"
# The name clients use in the cluster, which the server certificate holds.
SERVICE_NAME = "genconf.genconf.svc"
WAIT = 30.0  # seconds: a bound on events, never a sleep


def load_entrypoint() -> ModuleType:
    """deploy/entrypoint.py as a module (it is a script the image runs, not a package)."""
    spec = importlib.util.spec_from_file_location("genconf_image_entrypoint", ENTRYPOINT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def documents(path: Path) -> list[dict[str, Any]]:
    """The YAML documents of ``path`` (empty ones dropped)."""
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def service_certificate(directory: Path) -> tuple[CertificateAuthority, Issued]:
    """A CA and a server certificate for SERVICE_NAME only: no IP address, no localhost."""
    ca = CertificateAuthority(directory, "deploy")
    issued = ca._issue(
        "service", SERVICE_NAME, ExtendedKeyUsageOID.SERVER_AUTH, [x509.DNSName(SERVICE_NAME)]
    )
    return ca, issued


@asynccontextmanager
async def service_server(
    mongo_uri: str, db_name: str, *, cert: Path, key: Path, ca: bytes, admin_token: str
) -> AsyncIterator[str]:
    """A genconf server as the Deployment runs it (TLS with ``cert``, authentication
    on) on 127.0.0.1, as a port-forward reaches it: its address, once SERVING."""
    config = server_config(mongo_uri, db_name, tls_cert=cert, tls_key=key, admin_token=admin_token)
    async with serve(config) as srv:
        address = f"127.0.0.1:{srv.address.rsplit(':', 1)[1]}"
        await wait_serving_as(address, ca, SERVICE_NAME)
        yield address


def admin_client(address: str, ca: Path, token: str) -> Client:
    return Client(address, tls_ca=str(ca), tls_server_name=SERVICE_NAME, token=token, timeout=10)


def clean_environ(**extra: str) -> dict[str, str]:
    """Our environment without GENCONF_* settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENCONF_")}
    env.update(extra)
    return env


@asynccontextmanager
async def child_process(
    argv: Sequence[str], env: Mapping[str, str], log: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``argv`` as a child process with exactly ``env``, its stderr in ``log``;
    stopped (SIGTERM, then SIGKILL) afterwards if it still runs."""
    err = log.open("ab")
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=dict(env),
        )
    finally:
        err.close()  # the child holds its own descriptor
    try:
        yield proc
    finally:
        await stop_process(proc)


def entrypoint_process(
    env: Mapping[str, str], *args: str, log: Path
) -> AbstractAsyncContextManager[asyncio.subprocess.Process]:
    """``python deploy/entrypoint.py ARGS``: what the image runs."""
    return child_process([sys.executable, str(ENTRYPOINT), *args], env, log)


# -- manifests -------------------------------------------------------------------------------

K8S = DEPLOY / "k8s"
EXAMPLES = DEPLOY / "examples"


def manifest_files() -> list[Path]:
    """Every Kubernetes manifest in deploy/: the server's, its Secret shapes, the examples."""
    return sorted([*K8S.rglob("*.yaml"), *EXAMPLES.glob("*.yaml")])


def objects(path: Path) -> list[dict[str, Any]]:
    return [d for d in documents(path) if "kind" in d]


def the_object(path: Path, kind: str, name: str) -> dict[str, Any]:
    (found,) = [o for o in objects(path) if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def agent_container(pod: Mapping[str, Any]) -> dict[str, Any]:
    """The one container of a pod spec that runs the image's agent mode."""
    found = [
        c
        for c in [*pod.get("initContainers", []), *pod.get("containers", [])]
        if c.get("args", [])[:1] == ["agent"]
    ]
    assert len(found) == 1, [c["name"] for c in found]
    return found[0]


def pod_environment(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    fields: Mapping[str, str],
    volumes: Mapping[str, Path],
) -> dict[str, str]:
    """The container's environment as the kubelet gives it, with each path under a
    volume's mountPath moved to the directory standing in for that volume:
    ``fields`` are the downward API's values (``metadata.name``, ``spec.nodeName``),
    ``volumes`` the directories by volume name."""
    mounts = {m["mountPath"]: volumes[m["name"]] for m in container.get("volumeMounts", [])}
    declared = {v["name"] for v in pod.get("volumes", [])}
    assert set(volumes) <= declared, f"no such volumes: {set(volumes) - declared}"

    def moved(value: str) -> str:
        for mount, directory in mounts.items():
            if value == mount or value.startswith(mount + "/"):
                return str(directory) + value[len(mount) :]
        return value

    env = {}
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = moved(var["value"])
        else:
            env[var["name"]] = fields[var["valueFrom"]["fieldRef"]["fieldPath"]]
    return env
