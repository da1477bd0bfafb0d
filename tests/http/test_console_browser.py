"""The web console in a real browser: Debian's headless Chromium driven by Playwright,
against a real genconf server (authentication on) and its JSON API.

Each test gets a fresh server and a fresh browser context (so a fresh session
storage); the browser is shared by the session. Changes the console must show
without a reload are made beside it, as operators and agents would: over gRPC with
the Python client, or with the `genconf` command. Screenshots of every page
(1280x800) land in ``tests/artifacts/console/`` for a person to look at.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Locator, Page, async_playwright, expect
from support.cli_runner import Genconf, clean_env
from support.servers import BOOTSTRAP, background_server, running_server

from genconf.api.server import RunningServer
from genconf.client import Client

pytestmark = [pytest.mark.mongo, pytest.mark.asyncio(loop_scope="session")]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "console"
# Generous for a loaded CI machine; every wait ends as soon as the page shows the thing.
expect.set_options(timeout=15_000)

SCHEMA = {
    "port": {"type": "int", "default": 8080, "description": "port to listen on"},
    "log-level": {"type": "string", "default": "info", "description": "debug|info|warning"},
    "workers": {"type": "int", "default": 2},
    "password": {"type": "string", "default": "", "secret": True},
}


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    """One Chromium for the session (Playwright gives it a fresh temporary profile)."""
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest_asyncio.fixture(loop_scope="session")
async def server(mongo_uri: str, db_name: str) -> AsyncIterator[RunningServer]:
    """A server with authentication on (``BOOTSTRAP`` is its admin token) and its HTTP
    API on a free loopback port; stopped when the test ends, failed or not."""
    async with background_server(
        mongo_uri, db_name, admin_token=BOOTSTRAP, http_listen="127.0.0.1:0"
    ) as srv:
        yield srv


@pytest_asyncio.fixture(loop_scope="session")
async def admin(server: RunningServer) -> AsyncIterator[Client]:
    async with Client(server.address, token=BOOTSTRAP, timeout=15) as c:
        yield c


@pytest_asyncio.fixture(loop_scope="session")
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh page in a fresh context; a script error in it fails the test."""
    context = await browser.new_context(viewport=VIEWPORT)
    errors: list[str] = []
    try:
        tab = await context.new_page()
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        # The console logs nothing as an error but the browser's note on each refused
        # request (those tests expect); a CSP violation or a failed module would show.
        tab.on(
            "console",
            lambda msg: (
                errors.append(msg.text)
                if msg.type == "error" and not msg.text.startswith("Failed to load resource")
                else None
            ),
        )
        yield tab
    finally:
        await context.close()
    assert not errors, f"the console threw: {errors}"


def url(server: RunningServer, route: str = "") -> str:
    return f"http://{server.http_address}/{route}"


async def shot(page: Page, name: str) -> None:
    """A 1280x800 screenshot of what the page shows now, kept as a test artifact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=ARTIFACTS / f"{name}.png")


async def log_in(page: Page, server: RunningServer, token: str) -> None:
    await page.goto(url(server))
    await page.get_by_label("Token").fill(token)
    await page.get_by_label("Token").press("Enter")
    await expect(page.locator("#who")).not_to_be_empty()
    await expect(page.locator("#feed-status")).to_have_text("live")


async def go(page: Page, route: str) -> None:
    """Follow an in-page link (hash routing: no reload)."""
    await page.evaluate("(hash) => { location.hash = hash; }", route)


async def mark_page(page: Page) -> None:
    """A marker a reload would wipe: `assert_not_reloaded` checks it is still there."""
    await page.evaluate("() => { window.__stillHere = true; }")


async def assert_not_reloaded(page: Page) -> None:
    assert await page.evaluate("() => window.__stillHere === true"), "the page was reloaded"


async def agent_report(server: RunningServer, admin: Client, unit: str, hash: str) -> None:
    """Report ``hash`` applied as ``unit``'s agent does, with an agent token bound to it."""
    minted = await admin.create_token("agent", unit=unit, name=f"agent {unit}")
    async with Client(server.address, token=minted.token, timeout=15) as agent:
        await agent.report_applied(unit, hash, ok=True, message="restarted")


def row(page: Page, text: str) -> Locator:
    return page.locator("tbody tr").filter(has=page.get_by_text(text, exact=True))


async def test_login_refuses_a_bad_token_with_the_servers_message(
    page: Page, server: RunningServer
) -> None:
    await page.goto(url(server))
    await expect(page.get_by_role("heading", name="genconf console")).to_be_visible()
    await shot(page, "01-login")
    await page.get_by_label("Token").fill("not-a-token-of-this-server")
    await page.get_by_role("button", name="Log in").click()
    alert = page.get_by_role("alert")
    await expect(alert).to_contain_text("UNAUTHENTICATED")
    assert (await alert.inner_text()).strip() != "UNAUTHENTICATED", "the message must say why"
    assert await page.evaluate("() => sessionStorage.length") == 0
    await shot(page, "02-login-refused")


async def test_a_release_through_the_console(
    page: Page, server: RunningServer, admin: Client
) -> None:
    """Log in; create an application; stage a branch change, track a unit, see the
    conflict a concurrent master change makes, commit with force; the fleet page marks
    units current as agents report; roll back from the history page."""
    await log_in(page, server, BOOTSTRAP)
    await expect(page.locator("#who")).to_contain_text("bootstrap admin")
    await expect(page.locator("#who")).to_contain_text("admin")
    # The token lives in this tab's session storage, never in the address.
    assert await page.evaluate("() => sessionStorage.getItem('genconf.token')") == BOOTSTRAP
    assert BOOTSTRAP not in page.url

    # -- create an application ------------------------------------------------------
    await page.get_by_role("button", name="Create application").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label("Name").fill("web")
    await dialog.get_by_label("Charm").fill("web-server")
    await dialog.get_by_label("Schema (JSON)").fill(json.dumps(SCHEMA, indent=1))
    await dialog.get_by_label("Initial settings (JSON)").fill('{"workers": 4}')
    await dialog.get_by_label("Units").fill("3")
    await dialog.get_by_label("Reason").fill("first release")
    await shot(page, "03-create-application")
    await dialog.get_by_role("button", name="Create").click()
    await expect(page.get_by_role("heading", name="web", exact=True)).to_be_visible()
    await expect(page.locator("main")).to_contain_text("version 1")
    await expect(row(page, "web/2")).to_be_visible()
    app = await admin.get_application("web")
    assert (app.version, list(app.units), app.charm) == (
        1,
        ["web/0", "web/1", "web/2"],
        "web-server",
    )
    assert dict(app.settings) == {"workers": 4}

    # -- a branch: track a unit, stage a change ---------------------------------------
    await go(page, "#/branches")
    await page.get_by_role("button", name="New branch").click()
    await page.get_by_role("dialog").get_by_label("Name").fill("canary")
    await page.get_by_role("dialog").get_by_label("Name").press("Enter")
    await expect(page.get_by_role("heading", name="canary", exact=True)).to_be_visible()

    await page.get_by_role("button", name="Track units").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label("Units", exact=True).fill("web/0")
    await dialog.get_by_role("button", name="Track").click()
    await expect(row(page, "web/0")).to_be_visible()

    await page.get_by_role("button", name="Stage change").click()
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_contain_text("takes no reason")
    await dialog.get_by_label("Application").select_option("web")
    await dialog.get_by_label("Set (KEY=VALUE per line)").fill("log-level=debug\nport=9090")
    await dialog.get_by_role("button", name="Stage").click()
    changes = page.locator("section.panel").filter(has=page.get_by_role("heading", name="Changes"))
    await expect(changes.locator("tbody tr")).to_have_count(2)
    await expect(page.locator("#conflicts")).to_contain_text("No conflicts")
    branch = await admin.get_branch("canary")
    assert list(branch.units) == ["web/0"]

    # -- a concurrent master change makes a conflict, shown before any commit ------------
    before_commit = await admin.set_config("web", {"log-level": "warning"}, reason="ops")
    await expect(page.locator("#conflicts")).to_contain_text("1 conflict with master")
    await expect(page.locator("#conflicts")).to_contain_text('"warning"')
    await shot(page, "04-branch-conflict")
    old_hash = (await admin.get_config("web/2", min_revision=before_commit.revision)).hash

    # Without force the server refuses, and the dialog says why.
    await page.get_by_role("button", name="Commit…").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label("Reason").fill("debug logs everywhere")
    await dialog.get_by_role("button", name="Commit").click()
    await expect(dialog.get_by_role("alert").last).to_contain_text("FAILED_PRECONDITION")
    await expect(dialog.get_by_role("alert").last).to_contain_text("log-level")
    await shot(page, "05-commit-refused")
    await dialog.get_by_label("Force").check()
    await dialog.get_by_role("button", name="Commit").click()
    await expect(page.get_by_role("heading", name="Branches", exact=True)).to_be_visible()
    await expect(page.locator("#alerts")).to_contain_text("Committed canary")
    app = await admin.get_application("web")
    assert app.version == 3
    assert dict(app.settings) == {"workers": 4, "log-level": "debug", "port": 9090}

    # -- fleet: agents report; units become current -------------------------------------
    await go(page, "#/fleet")
    counts = page.locator(".counts")
    await expect(counts.locator("[data-status=unreported] .n")).to_have_text("3")
    committed = await admin.get_config("web/0")
    for unit in ("web/0", "web/1"):
        await agent_report(server, admin, unit, committed.hash)
    await agent_report(server, admin, "web/2", old_hash)
    await expect(counts.locator("[data-status=current] .n")).to_have_text("2")
    await expect(counts.locator("[data-status=behind] .n")).to_have_text("1")
    await expect(row(page, "web/2")).to_contain_text("behind")
    await shot(page, "06-fleet-behind")
    await agent_report(server, admin, "web/2", committed.hash)
    await expect(counts.locator("[data-status=current] .n")).to_have_text("3")
    for unit in ("web/0", "web/1", "web/2"):
        await expect(row(page, unit)).to_contain_text("current")
    await page.get_by_label("Search").fill("web/1")
    await expect(page.locator("main tbody tr")).to_have_count(1)
    await page.get_by_label("Search").fill("")
    await shot(page, "07-fleet-current")

    # -- the application page: effective config per group -----------------------------
    await go(page, "#/applications/web")
    effective = page.locator("table.effective")
    await expect(effective.locator("tbody tr").filter(has_text="port")).to_contain_text("9090")
    await shot(page, "08-application")
    await go(page, "#/applications")
    await expect(row(page, "web")).to_be_visible()
    await shot(page, "09-applications")
    await go(page, "#/branches")
    await expect(page.locator("main")).to_contain_text("No branches in flight")
    await shot(page, "10-branches")

    # -- history: compare any two, roll back -------------------------------------------
    await go(page, "#/history/web")
    versions = page.locator("table.versions tbody tr")
    await expect(versions).to_have_count(3)
    await page.get_by_label("Compare from version 1").check()
    await page.get_by_label("Compare to version 3").check()
    await page.get_by_role("button", name="Compare selected").click()
    await expect(page.locator("#diff-summary")).to_have_text(
        "web version 1 -> version 3: 2 changed, 0 added, 0 removed"
    )
    await expect(page.locator("#compare table")).to_contain_text("log-level")
    await shot(page, "11-history-diff")
    await (
        versions.filter(has=page.get_by_text("ops", exact=True))
        .get_by_role("button", name="Roll back to")
        .click()
    )
    dialog = page.get_by_role("dialog")
    await expect(dialog.get_by_label("Expected current version")).to_have_value("3")
    await dialog.get_by_label("Reason").fill("debug was too loud")
    await dialog.get_by_role("button", name="Roll back").click()
    await expect(versions).to_have_count(4)
    await expect(versions.first).to_contain_text("rollback to 2 from 3")
    await expect(versions.first).to_contain_text("current")
    await shot(page, "12-history-rollback")
    app = await admin.get_application("web")
    assert app.version == 4
    assert dict(app.settings) == {"workers": 4, "log-level": "warning"}

    # -- tokens (admins): the agent tokens minted above, and one made here --------------
    await go(page, "#/tokens")
    await expect(page.locator("main tbody tr")).to_have_count(4)
    await page.get_by_role("button", name="Create token").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label("Role").select_option("observer")
    await dialog.get_by_label("Name").fill("dashboards")
    await dialog.get_by_role("button", name="Create").click()
    secret = await dialog.get_by_label("The new token").input_value()
    assert secret.startswith("gct_")
    await shot(page, "13-token-created")
    await dialog.get_by_role("button", name="Done").click()
    await expect(page.locator("main tbody tr")).to_have_count(5)
    await shot(page, "14-tokens")


async def test_changes_made_elsewhere_show_without_a_reload(
    page: Page, server: RunningServer, admin: Client, tmp_path: Path
) -> None:
    """A write over gRPC and a branch commit from the `genconf` command reach an open
    page through the console's one live feed; the live page lists them."""
    await admin.create_application("web", schema=SCHEMA, units=2, reason="start")
    await admin.add_branch("canary")
    await admin.track_branch("canary", units=["web/0"])
    await admin.set_branch_config("canary", "web", {"workers": 8})
    await log_in(page, server, BOOTSTRAP)
    await go(page, "#/applications/web")
    settings = page.locator("section.panel").filter(
        has=page.get_by_role("heading", name="Master settings")
    )
    await expect(settings).to_contain_text("Nothing set")
    effective = page.locator("table.effective")
    await expect(effective.locator("thead")).to_contain_text("canary")
    await shot(page, "08b-application-with-branch")
    await go(page, "#/branches")
    await expect(row(page, "canary")).to_contain_text("1 unit")
    await shot(page, "10b-branches-in-flight")
    await go(page, "#/applications/web")
    await expect(effective.locator("thead")).to_contain_text("canary")
    await mark_page(page)

    await admin.set_config("web", {"port": 7070}, reason="move port")
    await expect(settings.locator("tbody tr").filter(has_text="port")).to_contain_text("7070")
    await expect(page.locator("main")).to_contain_text("version 2")

    cli = Genconf(server.address, clean_env(tmp_path, GENCONF_TOKEN=BOOTSTRAP))
    (await cli("branch", "commit", "canary", "--reason", "more workers")).ok()
    await expect(settings.locator("tbody tr").filter(has_text="workers")).to_contain_text("8")
    await expect(effective.locator("thead")).not_to_contain_text("canary")
    await assert_not_reloaded(page)

    await go(page, "#/live")
    await expect(page.locator("#live-rows")).to_contain_text("commit of canary")
    await admin.set_config("web", {"log-level": "debug"}, reason="look closer")
    await expect(page.locator("#live-rows")).to_contain_text("set: web v4 (look closer)")
    await assert_not_reloaded(page)
    await shot(page, "15-live")


async def test_an_observer_sees_redacted_secrets_and_no_writes(
    page: Page, server: RunningServer, admin: Client
) -> None:
    await admin.create_application(
        "db", schema=SCHEMA, settings={"password": "hunter2", "port": 5432}, units=1
    )
    observer = await admin.create_token("observer", name="auditor")
    await log_in(page, server, observer.token)
    await expect(page.locator("#who")).to_contain_text("auditor")
    await expect(page.locator("#who")).to_contain_text("observer")
    await expect(page.get_by_role("link", name="Tokens")).to_be_hidden()

    await go(page, "#/applications/db")
    settings = page.locator("section.panel").filter(
        has=page.get_by_role("heading", name="Master settings")
    )
    await expect(settings.locator("tbody tr").filter(has_text="password")).to_contain_text(
        "<redacted>"
    )
    await expect(settings.locator("tbody tr").filter(has_text="port")).to_contain_text("5432")
    await expect(page.get_by_role("button", name="Set config")).to_have_count(0)
    await shot(page, "16-observer-application")
    assert "hunter2" not in await page.content()

    await go(page, "#/tokens")
    await expect(page.locator("main")).to_contain_text("Tokens are for admins only")


async def test_the_feed_resumes_from_the_last_event_id(
    page: Page, server: RunningServer, admin: Client
) -> None:
    """The console's feed reader, run in the page against the server: it replays what
    followed its Last-Event-ID, and after a revision the server no longer holds it
    says so (a resync) and follows live."""
    await admin.create_application("web", open=True, units=1, reason="start")
    first = await admin.set_config("web", {"a": 1}, reason="first")
    second = await admin.set_config("web", {"b": 2}, reason="second")
    await log_in(page, server, BOOTSTRAP)
    seen = await page.evaluate(
        """async ([since, until]) => {
            const { Feed } = await import("./feed.js");
            const feed = new Feed();
            feed.lastId = since;
            const seen = [];
            await new Promise((resolve) => {
                feed.subscribe((e) => {
                    if (e.type === "resync") return;
                    seen.push([e.revision, e.type, e.data.key]);
                    if (e.id === until) resolve();
                });
                feed.start();
            });
            feed.stop();
            return seen;
        }""",
        [str(first.revision), str(second.revision)],
    )
    assert seen, "nothing replayed"
    assert all(int(revision) > first.revision for revision, _, _ in seen), seen
    assert [str(second.revision), "application", "web"] in seen

    # A revision older than the server keeps: a 410 with a too-old event, then live.
    await page.evaluate(
        """async () => {
            const { Feed } = await import("./feed.js");
            const feed = new Feed();
            feed.lastId = "1";
            window.__feed = { resyncs: 0, statuses: [], seen: [] };
            feed.subscribe((e) => {
                if (e.type === "resync") window.__feed.resyncs += 1;
                else window.__feed.seen.push(`${e.type}:${e.data.key}`);
            });
            feed.onStatus((status) => window.__feed.statuses.push(status));
            feed.start();
        }"""
    )
    await page.wait_for_function("() => window.__feed.statuses.includes('live')")
    await admin.set_config("web", {"c": 3}, reason="third")
    await page.wait_for_function("() => window.__feed.seen.includes('generation:3')")
    state = await page.evaluate("() => window.__feed")
    assert state["statuses"][:3] == ["idle", "connecting", "reconnecting"], state
    assert state["statuses"][-1] == "live", state
    assert state["resyncs"] >= 1, state
    assert state["seen"] == ["application:web", "generation:3"], state


async def test_without_authentication_no_login_and_the_keyboard_drives_it(
    page: Page, mongo_uri: str, db_name: str
) -> None:
    async with running_server(mongo_uri, db_name, http_listen="127.0.0.1:0") as srv:
        async with Client(srv.address, timeout=15) as c:
            await c.create_application("web", units=1)
        await page.goto(url(srv))
        await expect(page.locator("#who")).to_contain_text("no auth")
        await expect(page.get_by_role("button", name="Log out")).to_be_hidden()
        await expect(row(page, "web")).to_be_visible()

        # A link and a dialog, with the keyboard only: Enter follows, Escape closes,
        # Enter in a field submits.
        await page.get_by_role("link", name="Fleet").focus()
        await page.keyboard.press("Enter")
        await expect(page.get_by_role("heading", name="Fleet")).to_be_visible()
        await page.get_by_role("link", name="Applications").focus()
        await page.keyboard.press("Enter")
        await page.get_by_role("button", name="Create application").focus()
        await page.keyboard.press("Enter")
        dialog = page.get_by_role("dialog")
        await expect(dialog.get_by_label("Name")).to_be_focused()
        await page.keyboard.press("Escape")
        await expect(dialog).to_have_count(0)
        await page.get_by_role("button", name="Create application").focus()
        await page.keyboard.press("Enter")
        await page.keyboard.type("kb")
        await dialog.get_by_label("Reason").focus()
        await page.keyboard.type("typed, not clicked")
        await page.keyboard.press("Enter")
        await expect(page.get_by_role("heading", name="kb", exact=True)).to_be_visible()
        await shot(page, "17-no-auth")
        async with Client(srv.address, timeout=15) as c:
            versions = await c.list_versions("kb")
        assert versions.versions[0].reason == "typed, not clicked"


async def test_the_other_writes_of_the_console(
    page: Page, server: RunningServer, admin: Client
) -> None:
    """Set config (and its version guard), add units, tag, bump, key history, revert,
    untrack, abort and revoke, each checked on the server."""
    await admin.create_application("web", schema=SCHEMA, units=1, reason="start")
    await log_in(page, server, BOOTSTRAP)
    await go(page, "#/applications/web")

    await page.get_by_role("button", name="Set config").click()
    dialog = page.get_by_role("dialog")
    await expect(dialog.get_by_label("Expected version")).to_have_value("1")
    await dialog.get_by_label("Set", exact=True).fill("port=9091\nlog-level=debug")
    await dialog.get_by_label("Reason").fill("tune")
    await dialog.get_by_role("button", name="Set config").click()
    await expect(page.locator("main")).to_contain_text("version 2")
    assert dict((await admin.get_application("web")).settings) == {
        "port": 9091,
        "log-level": "debug",
    }

    # A stale expected version: the server refuses, the dialog says so and stays open.
    await page.get_by_role("button", name="Set config").click()
    await expect(dialog.get_by_label("Expected version")).to_have_value("2")
    await admin.set_config("web", {"workers": 3}, reason="meanwhile")
    await dialog.get_by_label("Set", exact=True).fill("port=1")
    await dialog.get_by_label("Reason").fill("too late")
    await dialog.get_by_role("button", name="Set config").click()
    await expect(dialog.get_by_role("alert")).to_contain_text("ABORTED")
    await shot(page, "18-set-config-stale")
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(page.locator("main")).to_contain_text("version 3")

    await page.get_by_role("button", name="Add units").click()
    await dialog.get_by_label("How many").fill("2")
    await dialog.get_by_role("button", name="Add units").click()
    await expect(row(page, "web/2")).to_be_visible()
    assert list((await admin.get_application("web")).units) == ["web/0", "web/1", "web/2"]

    # -- history: tag, bump, key history, revert -----------------------------------------
    await go(page, "#/history/web")
    versions = page.locator("table.versions tbody tr")
    await expect(versions).to_have_count(3)
    await versions.last.get_by_role("button", name="Tag").click()
    await dialog.get_by_label("Label").fill("1.0.0")
    await dialog.get_by_role("button", name="Tag").click()
    await expect(versions.last).to_contain_text("1.0.0")
    await page.get_by_role("button", name="Bump label…").click()
    await dialog.get_by_label("Part").select_option("minor")
    await dialog.get_by_role("button", name="Bump").click()
    await expect(versions.first).to_contain_text("1.1.0")
    assert (await admin.latest_version("web")).label == "1.1.0"

    await page.get_by_label("Key", exact=True).select_option("port")
    await page.get_by_role("button", name="Show").click()
    history = page.locator("section.panel").filter(
        has=page.get_by_role("heading", name="Key history")
    )
    await expect(history.locator("tbody tr").first).to_contain_text("9091")

    generations = page.locator("section.panel").filter(
        has=page.get_by_role("heading", name="Generations")
    )
    await expect(generations.locator("tbody tr")).to_have_count(2)
    await (
        generations.locator("tbody tr")
        .filter(has_text="meanwhile")
        .get_by_role("button", name="Revert…")
        .click()
    )
    await dialog.get_by_label("Reason").fill("undo meanwhile")
    await dialog.get_by_role("button", name="Revert").click()
    await expect(generations.locator("tbody tr")).to_have_count(3)
    await expect(versions).to_have_count(4)
    await shot(page, "19-history-tags-revert")
    assert "workers" not in dict((await admin.get_application("web")).settings)

    # -- a branch: untrack one unit, abort with force --------------------------------------
    await admin.add_branch("trial")
    await admin.track_branch("trial", units=["web/0", "web/1"])
    await go(page, "#/branches/trial")
    await page.get_by_role("button", name="Untrack web/1").click()
    await dialog.get_by_role("button", name="Untrack").click()
    await expect(page.get_by_role("button", name="Untrack web/1")).to_have_count(0)
    assert list((await admin.get_branch("trial")).units) == ["web/0"]
    await page.get_by_role("button", name="Abort…").click()
    await dialog.get_by_role("button", name="Abort branch").click()
    await expect(dialog.get_by_role("alert")).to_contain_text("FAILED_PRECONDITION")
    await dialog.get_by_label("Force").check()
    await dialog.get_by_role("button", name="Abort branch").click()
    await expect(page.get_by_role("heading", name="Branches", exact=True)).to_be_visible()
    assert await admin.list_branches() == []

    # -- revoke a token ------------------------------------------------------------------
    minted = await admin.create_token("controller", name="ci")
    await go(page, "#/tokens")
    await row(page, minted.info.id).get_by_role("button", name="Revoke…").click()
    await dialog.get_by_role("button", name="Revoke").click()
    await expect(row(page, minted.info.id)).to_contain_text("revoked")
    assert [t.revoked for t in await admin.list_tokens() if t.id == minted.info.id] == [True]
