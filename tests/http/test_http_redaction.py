"""What observers see over HTTP: the same redaction as over gRPC (`Guard.shown_to`,
the same code): secret values are ``<redacted>`` in every read, diff, history and
stream, and config hashes are keyed; admins see everything as it is."""

from __future__ import annotations

import json
from typing import Any

from support.servers import BOOTSTRAP, admin_session
from web_support import API, events, next_event, web_client

from genconf.security.redact import REDACTED

SCHEMA: dict[str, Any] = {
    "port": {"type": "int", "default": 80},
    "password": {"type": "string", "secret": True, "default": "changeme"},
}
SECRET = "s3cret-value"


def secrets_in(data: Any) -> bool:
    return SECRET in json.dumps(data) or "changeme" in json.dumps(data)


async def test_observers_see_redacted_values_and_keyed_hashes(mongo_uri: str, db_name: str) -> None:
    async with admin_session(mongo_uri, db_name, http_listen="127.0.0.1:0") as (srv, admin):
        start = (await admin.snapshot()).revision
        await admin.create_application("web", schema=SCHEMA, units=1)
        await admin.set_config("web", {"port": 8080, "password": SECRET})
        await admin.add_branch("b")
        await admin.set_branch_config("b", "web", {"password": "other-" + SECRET})
        done = await admin.set_config("web", {"password": SECRET + "2"})
        await admin.list_units(min_revision=done.revision)
        observer = (await admin.create_token("observer")).token
        async with web_client(srv, observer) as eyes, web_client(srv, BOOTSTRAP) as root:
            reads = [
                f"{API}/applications/web",
                f"{API}/applications",
                f"{API}/snapshot",
                f"{API}/units/web/0/config",
                f"{API}/branches/b",
                f"{API}/branches/b/diff",
                f"{API}/applications/web/versions",
                f"{API}/applications/web/versions/2",
                f"{API}/applications/web/keys/password/history",
                f"{API}/generations",
            ]
            for url in reads:
                seen = (await eyes.get(url)).json()
                assert not secrets_in(seen), url
                assert REDACTED in json.dumps(seen), url
                assert secrets_in((await root.get(url)).json()), url
            compared = await eyes.post(
                f"{API}/applications/web/versions/compare", json={"from": 1, "to": 3}
            )
            assert not secrets_in(compared.json()) and REDACTED in compared.text
            shown = (await eyes.get(f"{API}/applications/web")).json()
            assert shown["settings"] == {"port": 8080, "password": REDACTED}
            assert shown["schema"]["password"]["default"] == REDACTED

            mine = (await eyes.get(f"{API}/units/web/0/config")).json()
            real = (await root.get(f"{API}/units/web/0/config")).json()
            assert mine["config"] == {"port": 8080, "password": REDACTED}
            assert len(mine["hash"]) == 64 and mine["hash"] != real["hash"]
            conflicts = (await eyes.get(f"{API}/branches/b/diff")).json()["applications"][0]
            assert conflicts["conflicts"][0]["current"] == REDACTED

            async with eyes.stream("GET", f"{API}/units/web/0/watch") as stream:
                first = await next_event(events(stream))
            assert first.data["config"]["password"] == REDACTED
            assert first.data["hash"] == mine["hash"]
            async with eyes.stream("GET", f"{API}/watch", params={"since": start}) as stream:
                feed = events(stream)
                app_events = []
                while len(app_events) < 3:
                    event = await next_event(feed)
                    if event.kind == "application":
                        app_events.append(event)
            assert all(not secrets_in(e.data) for e in app_events)
            assert app_events[-1].data["value"]["settings"]["password"] == REDACTED
