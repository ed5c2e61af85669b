"""The V1/V2 update converter against updates the real yjs made (tests/e2e/node/yupdates.mjs):
byte for byte what Yjs's convertUpdateFormat writes, and updates merged by pycrdt
read back by yjs as the same document."""

from __future__ import annotations

import base64
import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import merge_updates

from dxc.protocol.lib0 import Encoder, Lib0Error
from dxc.protocol.yupdates import v1_to_v2, v2_to_v1
from tests import yjs_node

pytestmark = pytest.mark.unit

SEEDS = (1, 2, 3, 4)


@pytest.fixture(scope="module", params=SEEDS)
def made(request: pytest.FixtureRequest) -> dict[str, Any]:
    return yjs_node.generate(request.param)


def formats(made: dict[str, Any]) -> list[dict[str, bytes]]:
    cases = [*made["updates"], made["state"]]
    return [{name: base64.b64decode(value) for name, value in case.items()} for case in cases]


def test_v2_to_v1_is_what_yjs_writes(made: dict[str, Any]) -> None:
    for case in formats(made):
        assert v2_to_v1(case["v2"]) == case["v1"]


def test_v1_to_v2_is_what_yjs_writes(made: dict[str, Any]) -> None:
    for case in formats(made):
        assert v1_to_v2(case["v1"]) == case["v1v2"]


def test_updates_merged_by_pycrdt_are_the_same_document_in_yjs(made: dict[str, Any]) -> None:
    v1 = [v2_to_v1(case["v2"]) for case in formats(made)[:-1]]
    merged = v1_to_v2(merge_updates(*v1))
    assert yjs_node.content_of([merged]) == made["content"]
    assert len(merged) < sum(len(case["v2"]) for case in formats(made)[:-1])


def test_a_cut_update_is_refused(made: dict[str, Any]) -> None:
    state = formats(made)[-1]
    for cut in (1, 7, len(state["v2"]) // 2):
        with pytest.raises(Lib0Error):
            v2_to_v1(state["v2"][:cut])
        with pytest.raises(Lib0Error):
            v1_to_v2(state["v1"][:cut])


def test_a_forged_struct_count_is_refused_at_once() -> None:
    """One client with 2**40 GCs, their info and lengths all from runs of a few
    bytes: without a bound, a conversion that never ends."""
    many = 2**40
    lengths = Encoder()
    lengths.var_int(0, negative_zero=True)  # a run of zeros...
    lengths.var_uint(many)  # ...this long
    columns = {
        "clients": b"\x00", "infos": b"\x00", "strings": b"\x00", "lengths": lengths.to_bytes()
    }
    update = Encoder()
    update.var_uint(0)
    for name in COLUMNS:
        update.var_uint8_array(columns.get(name, b""))
    update.var_uint(1)  # one client
    update.var_uint(many)  # with this many structs
    update.var_uint(0)  # from clock 0
    with pytest.raises(Lib0Error, match="more structs"):
        v2_to_v1(update.to_bytes())


COLUMNS = (
    "key_clocks", "clients", "left_clocks", "right_clocks", "infos", "strings",
    "parent_infos", "type_refs", "lengths",
)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_damaged_updates_convert_or_raise_lib0error(
    made: dict[str, Any], data: st.DataObject
) -> None:
    """Real updates with bytes overwritten: a conversion or a Lib0Error, nothing else."""
    state = formats(made)[-1]
    for fmt, convert in (("v2", v2_to_v1), ("v1", v1_to_v2)):
        damaged = bytearray(state[fmt])
        for _ in range(data.draw(st.integers(1, 4))):
            damaged[data.draw(st.integers(0, len(damaged) - 1))] = data.draw(st.integers(0, 255))
        with contextlib.suppress(Lib0Error):
            convert(bytes(damaged))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_convert_or_raise_lib0error(data: bytes) -> None:
    for convert in (v1_to_v2, v2_to_v1):
        with contextlib.suppress(Lib0Error):
            convert(data)
