"""The async `Client`: one method per RPC, over one channel.

Errors arrive as `ClientError` (or its typed subclass, such as `TooOld`),
carrying the gRPC status code, the server's actionable message and its
structured details (expected/actual version, conflicting keys). `watch_config`
survives server restarts: it reconnects with backoff and resumes with the last
hash it saw, so a caller sees every distinct config exactly once and never an
older one after a newer one.

Over 450 lines: one method per RPC of the six services, which belong on the one
class a caller holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from genconf import wire
from genconf.backoff import Backoff
from genconf.client.channel import open_channel
from genconf.client.requests import expectations, metadata_struct, schema_to_proto, values_struct
from genconf.client.results import Config
from genconf.client.rollout import RolloutCalls
from genconf.client.status import RETRYABLE, from_rpc_error
from genconf.client.transfer import TransferCalls
from genconf.domain.results import WriteResult
from genconf.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    agent_pb2,
    agent_pb2_grpc,
    controller_pb2_grpc,
    history_pb2_grpc,
    tokens_pb2_grpc,
    types_pb2,
)
from genconf.v1 import controller_pb2 as cpb
from genconf.v1 import history_pb2 as hpb
from genconf.v1 import tokens_pb2 as tpb

T = TypeVar("T")


class Client(TransferCalls, RolloutCalls):
    """Async genconf client over one gRPC channel."""

    def __init__(
        self,
        target: str = "127.0.0.1:50051",
        *,
        timeout: float | None = 30.0,
        backoff: Backoff | None = None,
        channel: grpc.aio.Channel | None = None,
        token: str | None = None,
        tls_ca: str | None = None,
        insecure_plaintext: bool = False,
        tls_server_name: str | None = None,
    ) -> None:
        """``tls_server_name``: check the server certificate against this name instead
        of ``target``'s host (a port-forward to a server named otherwise)."""
        self.target = target
        self.timeout = timeout
        self.backoff = backoff or Backoff()
        self.channel = channel or open_channel(
            target,
            token=token,
            tls_ca=tls_ca,
            insecure_plaintext=insecure_plaintext,
            tls_server_name=tls_server_name,
        )
        self._agent = agent_pb2_grpc.AgentServiceStub(self.channel)
        self._controller = controller_pb2_grpc.ControllerServiceStub(self.channel)
        self._admin = admin_pb2_grpc.AdminServiceStub(self.channel)
        self._history = history_pb2_grpc.HistoryServiceStub(self.channel)
        self._tokens = tokens_pb2_grpc.TokenServiceStub(self.channel)
        self._health = health_pb2_grpc.HealthStub(self.channel)

    async def aclose(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _call(self, method: Callable[..., Awaitable[T]], request: Any) -> T:
        try:
            return await method(request, timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None

    async def _write(self, method: Callable[..., Awaitable[Any]], request: Any) -> WriteResult:
        return wire.write_result(await self._call(method, request))

    # -- health -------------------------------------------------------------

    async def health(self, service: str = "") -> str:
        reply = await self._call(self._health.Check, health_pb2.HealthCheckRequest(service=service))
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)

    # -- applications and units ---------------------------------------------

    async def create_application(
        self,
        name: str,
        *,
        charm: str = "",
        schema: Mapping[str, Mapping[str, Any]] | None = None,
        open: bool = False,
        settings: Mapping[str, Any] | None = None,
        units: int = 0,
        reason: str = "",
        metadata: Mapping[str, Any] | None = None,
        created_by: str = "",
    ) -> WriteResult:
        """``settings``, ``reason`` and ``metadata`` make version 1; ``open`` allows
        any key the schema does not declare."""
        return await self._write(
            self._controller.CreateApplication,
            cpb.CreateApplicationRequest(
                name=name,
                charm=charm,
                schema=schema_to_proto(schema or {}),
                open=open,
                settings=values_struct(settings),
                units=units,
                reason=reason,
                metadata=metadata_struct(metadata),
                created_by=created_by,
            ),
        )

    async def update_application(
        self,
        name: str,
        *,
        charm: str | None = None,
        schema: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> WriteResult:
        request = cpb.UpdateApplicationRequest(name=name, replace_schema=schema is not None)
        if charm is not None:
            request.charm = charm
        if schema is not None:
            for key, option in schema_to_proto(schema).items():
                request.schema[key].CopyFrom(option)
        return await self._write(self._controller.UpdateApplication, request)

    async def remove_application(self, name: str, *, force: bool = False) -> WriteResult:
        """``force``: also when it has units (they are removed with it)."""
        return await self._write(
            self._controller.RemoveApplication,
            cpb.RemoveApplicationRequest(name=name, force=force),
        )

    async def get_application(self, name: str, *, min_revision: int = 0) -> types_pb2.Application:
        return await self._call(
            self._controller.GetApplication,
            cpb.GetApplicationRequest(name=name, min_revision=min_revision),
        )

    async def list_applications(self, *, min_revision: int = 0) -> list[types_pb2.Application]:
        reply = await self._call(
            self._controller.ListApplications,
            cpb.ListApplicationsRequest(min_revision=min_revision),
        )
        return list(reply.applications)

    async def add_units(
        self,
        application: str,
        *,
        count: int = 0,
        names: Sequence[str] = (),
        labels: Mapping[str, str] | None = None,
    ) -> WriteResult:
        """``labels``: every new unit starts with them (a unit in a cohort a branch
        tracks of ``application`` joins that branch)."""
        return await self._write(
            self._controller.AddUnits,
            cpb.AddUnitsRequest(
                application=application, count=count, names=list(names), labels=labels or {}
            ),
        )

    async def remove_unit(self, name: str) -> WriteResult:
        return await self._write(self._controller.RemoveUnit, cpb.RemoveUnitRequest(name=name))

    async def label_unit(
        self, unit: str, set: Mapping[str, str] | None = None, *, remove: Sequence[str] = ()
    ) -> WriteResult:
        """Put labels ``set`` on ``unit`` and take the keys ``remove`` off."""
        return await self._write(
            self._controller.LabelUnit,
            cpb.LabelUnitRequest(unit=unit, set=set or {}, remove=list(remove)),
        )

    async def list_units(
        self, application: str = "", *, min_revision: int = 0
    ) -> list[types_pb2.Unit]:
        reply = await self._call(
            self._controller.ListUnits,
            cpb.ListUnitsRequest(application=application, min_revision=min_revision),
        )
        return list(reply.units)

    # -- master config -------------------------------------------------------

    async def set_config(
        self,
        application: str,
        set: Mapping[str, Any] | None = None,
        *,
        unset: Sequence[str] = (),
        replace: bool = False,
        expect: Mapping[str, Any] | None = None,
        expected_version: int | None = None,
        reason: str = "",
        created_by: str = "",
        metadata: Mapping[str, Any] | None = None,
    ) -> WriteResult:
        """``replace``: ``set`` is the whole config. ``expect``: per key, the value the
        write expects (``ABSENT``: none), refused with ABORTED otherwise."""
        request = cpb.SetConfigRequest(
            application=application,
            set=values_struct(set),
            unset=list(unset),
            replace=replace,
            reason=reason,
            created_by=created_by,
            metadata=metadata_struct(metadata),
        )
        wire.expectations_to_proto(expectations(expect), request.expect)
        if expected_version is not None:
            request.expected_version = expected_version
        return await self._write(self._controller.SetConfig, request)

    async def patch_config(
        self,
        application: str,
        key: str,
        diff: str,
        *,
        branch: str = "",
        expected_version: int | None = None,
        reason: str = "",
        created_by: str = "",
        metadata: Mapping[str, Any] | None = None,
    ) -> WriteResult:
        """Apply a unified diff to ``key``'s text, on master or ``branch``."""
        request = cpb.PatchConfigRequest(
            application=application,
            key=key,
            diff=diff,
            branch=branch,
            reason=reason,
            created_by=created_by,
            metadata=metadata_struct(metadata),
        )
        if expected_version is not None:
            request.expected_version = expected_version
        return await self._write(self._controller.PatchConfig, request)

    # -- branches --------------------------------------------------------------

    async def add_branch(
        self, name: str, *, created_by: str = "", expires_in_seconds: int = 0
    ) -> WriteResult:
        """``expires_in_seconds``: the server aborts the branch this long after (forced:
        its units go back to master); 0: never."""
        return await self._write(
            self._controller.AddBranch,
            cpb.AddBranchRequest(
                name=name, created_by=created_by, expires_in_seconds=expires_in_seconds
            ),
        )

    async def track_branch(
        self,
        branch: str,
        *,
        units: Sequence[str] = (),
        applications: Sequence[str] = (),
        count: int = 0,
        application: str = "",
        percent: float = 0,
        selector: str = "",
    ) -> WriteResult:
        """``percent`` and ``selector`` with ``application``: a stable cohort of its
        units (see `genconf.domain.cohorts`); the result's ``skipped`` names units of
        the cohort left on another branch."""
        return await self._write(
            self._controller.TrackBranch,
            cpb.TrackBranchRequest(
                branch=branch,
                units=list(units),
                applications=list(applications),
                count=count,
                application=application,
                percent=percent,
                selector=selector,
            ),
        )

    async def untrack_branch(
        self, branch: str, *, units: Sequence[str] = (), applications: Sequence[str] = ()
    ) -> WriteResult:
        return await self._write(
            self._controller.UntrackBranch,
            cpb.UntrackBranchRequest(
                branch=branch, units=list(units), applications=list(applications)
            ),
        )

    async def set_branch_config(
        self,
        branch: str,
        application: str,
        set: Mapping[str, Any] | None = None,
        *,
        unset: Sequence[str] = (),
        expect: Mapping[str, Any] | None = None,
    ) -> WriteResult:
        """``expect``: as `set_config`'s, against the branch's view of the application."""
        request = cpb.SetBranchConfigRequest(
            branch=branch, application=application, set=values_struct(set), unset=list(unset)
        )
        wire.expectations_to_proto(expectations(expect), request.expect)
        return await self._write(self._controller.SetBranchConfig, request)

    async def diff_branch(self, branch: str, *, min_revision: int = 0) -> cpb.DiffBranchResponse:
        return await self._call(
            self._controller.DiffBranch,
            cpb.DiffBranchRequest(branch=branch, min_revision=min_revision),
        )

    async def commit_branch(
        self,
        branch: str,
        *,
        force: bool = False,
        require_applied: bool = False,
        created_by: str = "",
        reason: str = "",
        metadata: Mapping[str, Any] | None = None,
    ) -> WriteResult:
        return await self._write(
            self._controller.CommitBranch,
            cpb.CommitBranchRequest(
                branch=branch,
                force=force,
                require_applied=require_applied,
                created_by=created_by,
                reason=reason,
                metadata=metadata_struct(metadata),
            ),
        )

    async def abort_branch(self, branch: str, *, force: bool = False) -> WriteResult:
        return await self._write(
            self._controller.AbortBranch, cpb.AbortBranchRequest(branch=branch, force=force)
        )

    async def rebase_branch(
        self, branch: str, *, keys: Sequence[str] = (), applications: Sequence[str] = ()
    ) -> WriteResult:
        """Take master's current values as the starting point of the staged ``keys``
        (none: every one) of ``applications`` (none: every one); each keeps its target,
        so a commit that conflicted on them goes through without force."""
        return await self._write(
            self._controller.RebaseBranch,
            cpb.RebaseBranchRequest(name=branch, keys=list(keys), applications=list(applications)),
        )

    async def drop_branch_key(self, branch: str, application: str, key: str) -> WriteResult:
        """Remove one staged key: the branch's units see master's value for it again."""
        return await self._write(
            self._controller.DropBranchKey,
            cpb.DropBranchKeyRequest(name=branch, application=application, key=key),
        )

    async def list_branches(self, *, min_revision: int = 0) -> list[types_pb2.Branch]:
        reply = await self._call(
            self._controller.ListBranches, cpb.ListBranchesRequest(min_revision=min_revision)
        )
        return list(reply.branches)

    async def get_branch(self, name: str, *, min_revision: int = 0) -> types_pb2.Branch:
        return await self._call(
            self._controller.GetBranch, cpb.GetBranchRequest(name=name, min_revision=min_revision)
        )

    # -- agents ------------------------------------------------------------------

    async def get_config(self, unit: str, *, min_revision: int = 0) -> Config:
        reply = await self._call(
            self._agent.GetConfig, agent_pb2.GetConfigRequest(unit=unit, min_revision=min_revision)
        )
        return Config.from_proto(reply)

    async def report_applied(
        self,
        unit: str,
        hash: str,
        *,
        ok: bool = True,
        message: str = "",
        health: str = "unknown",
        health_message: str = "",
    ) -> WriteResult:
        """``unit``'s agent applied config ``hash`` (``ok`` or not, ``message`` says
        how); ``health`` is "unknown", "healthy" or "unhealthy", as its health
        command says, ``health_message`` that command's output tail."""
        return await self._write(
            self._agent.ReportApplied,
            agent_pb2.ReportAppliedRequest(
                unit=unit,
                hash=hash,
                ok=ok,
                message=message,
                health=wire.health_value(health),
                health_message=health_message,
            ),
        )

    async def watch_config(
        self,
        unit: str,
        *,
        known_hash: str = "",
        reconnect: bool = True,
        min_revision: int = 0,
    ) -> AsyncIterator[Config]:
        """Every distinct config of ``unit``, in order, across reconnects.

        Bookmarks are consumed here. On UNAVAILABLE (restart, shutdown, network)
        the watch reconnects with backoff, resuming with the last hash, so the
        server sends nothing when nothing changed meanwhile. ``min_revision`` (a
        write's revision) makes the first config reflect that write, so a unit
        created just now is not NOT_FOUND on a server that has yet to see it.
        """
        last_hash = known_hash
        # The newest revision seen: a server reconnected to first catches up to it,
        # so a lagging replica can never take the caller back to an older config.
        seen_revision = min_revision
        delays = self.backoff.delays()
        while True:
            call = self._agent.WatchConfig(
                agent_pb2.WatchConfigRequest(
                    unit=unit, known_hash=last_hash, min_revision=seen_revision
                )
            )
            try:
                async for message in call:
                    delays = self.backoff.delays()
                    if message.HasField("bookmark"):
                        seen_revision = max(seen_revision, message.bookmark.revision)
                        continue
                    config = message.config
                    seen_revision = max(seen_revision, config.revision)
                    if config.hash == last_hash:
                        continue
                    last_hash = config.hash
                    yield Config.from_proto(config)
                if not reconnect:
                    return
            except grpc.aio.AioRpcError as exc:
                if not reconnect or exc.code() not in RETRYABLE:
                    raise from_rpc_error(exc) from None
            finally:
                call.cancel()
            await asyncio.sleep(next(delays))

    # -- admin -------------------------------------------------------------------

    async def snapshot(self) -> admin_pb2.SnapshotResponse:
        return await self._call(self._admin.Snapshot, admin_pb2.SnapshotRequest())

    async def watch_deltas(
        self,
        *,
        since_revision: int | None = None,
        kinds: Sequence[str] = (),
        applications: Sequence[str] = (),
    ) -> AsyncIterator[admin_pb2.DeltaBatch]:
        request = admin_pb2.WatchDeltasRequest(kinds=list(kinds), applications=list(applications))
        if since_revision is not None:
            request.since_revision = since_revision
        call = self._admin.WatchDeltas(request)
        try:
            async for batch in call:
                yield batch
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None
        finally:
            call.cancel()

    # -- history -------------------------------------------------------------

    async def list_versions(
        self,
        application: str,
        *,
        limit: int = 0,
        since_version: int = 0,
        before_version: int = 0,
    ) -> hpb.ListVersionsResponse:
        """Versions newest first (``limit`` 0: 100), only those after ``since_version``
        and, unless 0, before ``before_version`` (page back with the last one seen)."""
        return await self._call(
            self._history.ListVersions,
            hpb.ListVersionsRequest(
                application=application,
                limit=limit,
                since_version=since_version,
                before_version=before_version,
            ),
        )

    async def get_version(
        self, application: str, version: int = 0, *, label: str = ""
    ) -> types_pb2.Version:
        """One version: numbered ``version`` (0: the current one) or labelled ``label``."""
        return await self._call(
            self._history.GetVersion,
            hpb.GetVersionRequest(application=application, version=version, label=label),
        )

    async def latest_version(self, application: str) -> hpb.LatestVersionResponse:
        """The current version, and the highest semantic label with its version."""
        return await self._call(
            self._history.LatestVersion, hpb.LatestVersionRequest(application=application)
        )

    async def diff_versions(
        self,
        application: str,
        from_version: int = 0,
        to_version: int = 0,
        *,
        from_label: str = "",
        to_label: str = "",
    ) -> hpb.DiffVersionsResponse:
        """One version's effective config against another's (``to``: by default the
        current one), each named by number or label; with counts and a summary."""
        return await self._call(
            self._history.DiffVersions,
            hpb.DiffVersionsRequest(
                application=application,
                from_version=from_version,
                to_version=to_version,
                from_label=from_label,
                to_label=to_label,
            ),
        )

    async def rollback(
        self,
        application: str,
        to_version: int = 0,
        *,
        to_label: str = "",
        expected_version: int | None = None,
        reason: str = "",
        created_by: str = "",
        metadata: Mapping[str, Any] | None = None,
    ) -> WriteResult:
        """A new version with the settings of the version numbered ``to_version`` or
        labelled ``to_label``; its metadata is ``metadata`` plus rollback_from and
        rollback_to."""
        request = hpb.RollbackRequest(
            application=application,
            to_version=to_version,
            to_label=to_label,
            reason=reason,
            created_by=created_by,
            metadata=metadata_struct(metadata),
        )
        if expected_version is not None:
            request.expected_version = expected_version
        return await self._write(self._history.Rollback, request)

    async def tag_version(
        self, application: str, label: str, *, version: int = 0, version_label: str = ""
    ) -> hpb.LabelResponse:
        """Label a version (0: the current one, or the one labelled ``version_label``)
        with a semantic version such as 1.4.0."""
        return await self._call(
            self._history.TagVersion,
            hpb.TagVersionRequest(
                application=application, version=version, label=label, version_label=version_label
            ),
        )

    async def bump_version(
        self, application: str, part: str, *, version: int = 0, version_label: str = ""
    ) -> hpb.LabelResponse:
        """Label a version (0: the current one, or the one labelled ``version_label``)
        one ``major|minor|patch`` above the highest label at or below it (first: 1.0.0)."""
        return await self._call(
            self._history.BumpVersion,
            hpb.BumpVersionRequest(
                application=application, part=part, version=version, version_label=version_label
            ),
        )

    async def key_history(
        self,
        application: str,
        key: str,
        *,
        limit: int = 0,
        before_version: int = 0,
        before_label: str = "",
    ) -> hpb.KeyHistoryResponse:
        """Each version where ``key``'s effective value changed, newest first (only
        those before ``before_version``, or before the version labelled ``before_label``)."""
        return await self._call(
            self._history.KeyHistory,
            hpb.KeyHistoryRequest(
                application=application,
                key=key,
                limit=limit,
                before_version=before_version,
                before_label=before_label,
            ),
        )

    async def list_generations(
        self, *, limit: int = 0, since: int = 0, before: int = 0, application: str = ""
    ) -> hpb.ListGenerationsResponse:
        """Generations newest first, after ``since`` and, unless 0, before ``before``."""
        return await self._call(
            self._history.ListGenerations,
            hpb.ListGenerationsRequest(
                limit=limit, since=since, before=before, application=application
            ),
        )

    async def get_generation(self, id: int) -> types_pb2.Generation:
        return await self._call(self._history.GetGeneration, hpb.GetGenerationRequest(id=id))

    async def revert_generation(
        self,
        generation: int = 0,
        *,
        application: str = "",
        version: int = 0,
        label: str = "",
        force: bool = False,
        reason: str = "",
        created_by: str = "",
    ) -> WriteResult:
        """Apply the inverse of a generation: by id, or (``generation`` 0) the one that
        wrote ``application``'s version numbered ``version`` (0: its current one) or
        labelled ``label``."""
        return await self._write(
            self._history.RevertGeneration,
            hpb.RevertGenerationRequest(
                id=generation,
                application=application,
                version=version,
                label=label,
                force=force,
                reason=reason,
                created_by=created_by,
            ),
        )

    # -- tokens (admin) --------------------------------------------------------

    async def create_token(
        self,
        role: str,
        *,
        unit: str = "",
        expires_in_seconds: int = 0,
        description: str = "",
        name: str = "",
    ) -> tpb.CreateTokenResponse:
        """Mint a token; its secret (``.token``) is in this response only. Writes
        made with it record ``name`` and its id as their author."""
        return await self._call(
            self._tokens.CreateToken,
            tpb.CreateTokenRequest(
                role=role,
                unit=unit,
                expires_in_seconds=expires_in_seconds,
                description=description,
                name=name,
            ),
        )

    async def list_tokens(self, *, min_revision: int = 0) -> list[tpb.TokenInfo]:
        response = await self._call(
            self._tokens.ListTokens, tpb.ListTokensRequest(min_revision=min_revision)
        )
        return list(response.tokens)

    async def revoke_token(self, token_id: str) -> WriteResult:
        return await self._write(self._tokens.RevokeToken, tpb.RevokeTokenRequest(id=token_id))

    # -- fleet status ------------------------------------------------------------

    async def get_status(
        self, application: str = "", *, min_revision: int = 0
    ) -> cpb.StatusResponse:
        """Per application (every one, or ``application``): its version and label, the
        branches in flight, and each unit's state (current, behind, failed, unreported)."""
        return await self._call(
            self._controller.GetStatus,
            cpb.GetStatusRequest(application=application, min_revision=min_revision),
        )
