"""Merging a document's updates (dxc.sync.ycompaction.merge) with updates the real yjs made."""

from __future__ import annotations

import pytest

from dxc.sync.ycompaction import NotMergeable, merge
from tests import yjs_node

pytestmark = pytest.mark.unit


def test_a_merge_is_the_same_document_in_yjs() -> None:
    made = yjs_node.generate(21)
    merged = merge(yjs_node.v2_updates(made))
    assert yjs_node.content_of([merged]) == made["content"]


def test_a_merge_with_later_updates_is_the_same_document() -> None:
    made = yjs_node.generate(22)
    updates = yjs_node.v2_updates(made)
    merged = merge(updates[:40])
    assert yjs_node.content_of([merged, *updates[40:]]) == made["content"]
    assert yjs_node.content_of([merge([merged, *updates[40:]])]) == made["content"]


def test_updates_with_a_gap_are_not_merged() -> None:
    """An update whose predecessor is missing cannot be placed: the pile stays as it is."""
    made = yjs_node.generate(23)
    updates = yjs_node.v2_updates(made)
    with pytest.raises(NotMergeable):
        merge(updates[:10] + updates[12:])


def test_bytes_that_are_no_update_are_not_merged() -> None:
    made = yjs_node.generate(24)
    with pytest.raises(NotMergeable):
        merge([*yjs_node.v2_updates(made)[:3], b"\x00\x07garbage"])
