"""Writes that would surprise an operator are refused, with what to do instead:
removing an application that still has units, committing a branch with nothing staged."""

from __future__ import annotations

import asyncio

import pytest

from genconf.errors import FailedPrecondition, NotFound
from genconf.store.store import Store


async def test_removing_an_application_with_units_needs_force(store: Store) -> None:
    await store.create_application("web", units=7)
    with pytest.raises(FailedPrecondition) as err:
        await store.remove_application("web")
    assert err.value.message.startswith(
        "application 'web' has 7 unit(s) (web/0, web/1, web/2, web/3, web/4 and 2 more)"
    )
    assert await store.db["units"].count_documents({"application": "web"}) == 7
    await store.remove_application("web", force=True)
    assert await store.db["applications"].count_documents({}) == 0
    await store.create_application("empty")
    await store.remove_application("empty")  # no units: no force needed


async def test_a_unit_added_during_a_removal_is_counted(store: Store) -> None:
    """Adding a unit takes the application's fence, as the removal does: either the
    removal sees the unit (and refuses), or the unit's add fails (no application)."""
    for round_ in range(10):
        name = f"app{round_}"
        await store.create_application(name)
        results = await asyncio.gather(
            store.remove_application(name), store.add_units(name, count=1), return_exceptions=True
        )
        removed, added = results
        if isinstance(removed, BaseException):
            assert isinstance(removed, FailedPrecondition) and not isinstance(added, BaseException)
        else:
            assert isinstance(added, NotFound), added
        assert await store.db["units"].count_documents({"application": name}) == (
            1 if isinstance(removed, BaseException) else 0
        )


async def test_committing_an_empty_branch_is_refused(store: Store) -> None:
    await store.create_application("web", schema={"k": {"type": "int"}})
    await store.add_branch("empty")
    with pytest.raises(FailedPrecondition, match="has no changes: nothing to commit"):
        await store.commit_branch("empty")
    assert await store.db["branches"].count_documents({"_id": "empty"}) == 1
    assert await store.db["generations"].count_documents({}) == 0
