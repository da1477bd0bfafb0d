"""MongoDB: the only package that writes, and the history it reads back.

documents.py       collection names, document shapes, pure helpers of documents
mongo.py           connect, schema, transact(), fences, the generation counter,
                   and the one PyMongo -> genconf error translation
checks.py          what a write must satisfy before it writes anything
core.py            StoreCore (the database and its transactions), WriteResult
store.py           Store: the writes below, composed over StoreCore
  applications.py    applications and units
  master.py          master config: set, replace, expectations, patch
  branches.py        branches: track, untrack, stage, commit, abort
  history_writes.py  rollback, revert, labels
  tokens.py          token documents
  reports.py         agent reports, the observer key, direct reads
  transfer.py        export and import (transfer_export.py, transfer_import.py)
history.py         history reads: versions and generations
invariants.py      the model's invariants, checked over the documents
"""
