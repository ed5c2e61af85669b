"""Recognising BlobRefs in stored object text as the client does (sync.md §8.1)."""

from __future__ import annotations

import json

import pytest

from dxc.protocol.blob_refs import BadBlobId, blob_id_of, blob_ids_in_text, check_blob_id

ID = "0P021Ft0sWCdJNANkE46Aq1|"


def test_refs_are_found_anywhere_in_plain_objects_and_arrays():
    value = {
        "a": {"_bt": "Blob", "ref": f"1:{ID}", "size": 3, "ct": "image/png"},
        "list": [[{"deep": {"_bt": "string", "ref": "1:second_id_000", "size": 40000}}]],
        "_hasBlobRefs": 1,
    }
    assert blob_ids_in_text(json.dumps(value)) == {ID, "second_id_000"}


@pytest.mark.parametrize("value", [
    {"_bt": "Blob", "ref": f"1:{ID}", "v": "inline"},  # inline data: not a ref
    {"_bt": 1, "ref": f"1:{ID}"},
    {"_bt": "Blob", "ref": f"2:{ID}"},  # another server's ref version
    {"_bt": "Blob", "ref": "1:../../etc"},
    {"$t": "Blob", "v": "aGk=", "type": "a/b"},  # an inline TSON Blob
    {"title": 'mentions "_bt" in text'},
])
def test_what_is_not_a_ref_of_this_server(value):
    assert blob_ids_in_text(json.dumps(value)) == set()


def test_text_that_is_not_json_or_has_no_marker_is_not_parsed():
    assert blob_ids_in_text(None) == set()
    assert blob_ids_in_text('{"_bt": broken') == set()


def test_ids_and_refs_are_checked():
    assert check_blob_id(ID) == ID and blob_id_of(f"1:{ID}") == ID
    for bad in ("short", "x" * 65, "with space here", "ünicode_characters"):
        with pytest.raises(BadBlobId):
            check_blob_id(bad)
    for bad in (ID, f"0:{ID}", f"1:{ID}:x", "1:"):
        with pytest.raises(BadBlobId):
            blob_id_of(bad)
