"""Table-driven tests: a table is a ``{id: row}`` dict, so every row reads as what
it is about in a test report (``test_is_loopback[a private network]``).

    @pytest.mark.parametrize(("address", "loopback"), rows(LOOPBACK))
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest


def rows(table: Mapping[str, tuple[Any, ...]]) -> list[Any]:
    """``{id: row}`` as `pytest.param`s with those ids, in the table's order."""
    return [pytest.param(*row, id=name) for name, row in table.items()]
