"""Canonical JSON and the config hash (`genconf.domain.values`)."""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

from domain_strategies import (
    PROPERTY,
    nested_dicts,
    reorder,
)
from hypothesis import given
from hypothesis import strategies as st

from genconf.domain.values import canonical_json, config_hash

# ---------------------------------------------------------------------------
# config_hash


def test_config_hash_is_sha256_of_canonical_json() -> None:
    config = {"b": [1, 2.5, None], "a": {"z": True, "é": "ü"}}
    expected = hashlib.sha256(
        b'{"a":{"z":true,"\xc3\xa9":"\xc3\xbc"},"b":[1,2.5,null]}'
    ).hexdigest()
    assert config_hash(config) == expected
    assert (
        config_hash(config)
        == hashlib.sha256(
            json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        ).hexdigest()
    )


def test_config_hash_distinguishes_json_types() -> None:
    assert len({config_hash({"k": 1}), config_hash({"k": 1.0}), config_hash({"k": True})}) == 3


@PROPERTY
@given(nested_dicts, st.randoms(use_true_random=False))
def test_prop_config_hash_ignores_key_order(a: dict[str, Any], rnd: random.Random) -> None:
    shuffled = reorder(a, rnd)
    assert config_hash(shuffled) == config_hash(a)
    assert config_hash(a) == hashlib.sha256(canonical_json(a)).hexdigest()
