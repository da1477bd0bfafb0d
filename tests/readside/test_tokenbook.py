"""The token book on its own: change events in, records and announcements out.

No I/O: documents are minted with `auth.mint` and fed as the multiwatcher would
(a snapshot with `load`, then change events with `apply_event`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from genconf.security import auth
from genconf.security.tokenbook import TokenBook

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def token_doc(**changes: Any) -> dict[str, Any]:
    """A stored agent token's document (revision 1 unless changed)."""
    minted = auth.mint(
        auth.Role.AGENT, unit="web/0", expires_at=None, created_by="t", description="", now=NOW
    )
    return minted.doc | changes


def upsert(doc: dict[str, Any]) -> dict[str, Any]:
    return {"operationType": "update", "documentKey": {"_id": doc["_id"]}, "fullDocument": doc}


def delete(token_id: str) -> dict[str, Any]:
    return {"operationType": "delete", "documentKey": {"_id": token_id}}


def listening(book: TokenBook, token_id: str) -> list[str]:
    heard: list[str] = []
    book.listen(token_id, heard.append)
    return heard


def test_an_older_replayed_state_does_not_undo_a_revocation() -> None:
    doc = token_doc()
    book = TokenBook()
    book.load([doc])
    heard = listening(book, doc["_id"])
    book.apply_event(upsert(doc | {"revoked_at": NOW, "revision": 2}))
    assert heard == [doc["_id"]]
    record = book.get(doc["_id"])
    assert record is not None and record.revoked
    book.apply_event(upsert(doc))  # revision 1 again: e.g. a change stream resumed early
    record = book.get(doc["_id"])
    assert record is not None and record.revoked
    assert heard == [doc["_id"]]


def test_a_deleted_token_is_announced_and_forgotten() -> None:
    doc, other = token_doc(), token_doc()
    book = TokenBook()
    book.load([doc, other])
    heard, bystander = listening(book, doc["_id"]), listening(book, other["_id"])
    book.apply_event(delete(doc["_id"]))
    assert heard == [doc["_id"]] and bystander == []
    assert book.get(doc["_id"]) is None and len(book) == 1
    # Created again after the delete, it starts from its own revision 1.
    book.apply_event(upsert(doc))
    record = book.get(doc["_id"])
    assert record is not None and not record.revoked


def test_a_reload_announces_tokens_that_vanished_meanwhile() -> None:
    kept, gone = token_doc(), token_doc()
    book = TokenBook()
    book.load([kept, gone])
    gone_heard, kept_heard = listening(book, gone["_id"]), listening(book, kept["_id"])
    book.load([kept])  # a resync after the change stream lost history
    assert gone_heard == [gone["_id"]] and kept_heard == []
    assert book.get(gone["_id"]) is None and book.get(kept["_id"]) is not None


def test_a_cancelled_listener_hears_nothing() -> None:
    doc = token_doc()
    book = TokenBook()
    book.load([doc])
    heard: list[str] = []
    cancel = book.listen(doc["_id"], heard.append)
    cancel()
    cancel()  # idempotent
    book.apply_event(upsert(doc | {"revoked_at": NOW, "revision": 2}))
    assert heard == []


def test_expired_lists_only_expired_tokens_somebody_listens_to() -> None:
    soon = token_doc(expires_at=NOW + dt.timedelta(seconds=1))
    later = token_doc(expires_at=NOW + dt.timedelta(hours=1))
    unwatched = token_doc(expires_at=NOW + dt.timedelta(seconds=1))
    book = TokenBook()
    book.load([soon, later, unwatched])
    soon_heard, later_heard = listening(book, soon["_id"]), listening(book, later["_id"])
    assert book.expired(NOW) == []
    after = NOW + dt.timedelta(seconds=1)
    assert book.expired(after) == [soon["_id"]]
    book.announce_expired(after)
    assert soon_heard == [soon["_id"]] and later_heard == []
