"""Where-clause criteria of ``modify``/``delete`` operations (spec §4.5).

The server re-runs a client's where-clause over its own data, so it must
select what the client's IndexedDB index would select: the same key
extraction, the same key order, and objects without a valid key at the
index path are not in the index at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dxc.protocol.changes import get_by_key_path
from dxc.protocol.keys import compare_keys, is_valid_key
from dxc.tson import UNDEFINED

__all__ = ["ANY", "EQUAL", "NEVER", "RANGE", "Criteria", "KeyRange"]

# DBCoreRangeType
EQUAL, RANGE, ANY, NEVER = 1, 2, 3, 4
_MAX_KEY = [[]]  # Dexie's maxKey; an upper bound of it means "no upper bound"


@dataclass(frozen=True)
class KeyRange:
    """Dexie's ``DBCoreKeyRange``. A bound of UNDEFINED is unbounded."""

    type: int
    lower: Any = UNDEFINED
    upper: Any = UNDEFINED
    lower_open: bool = False
    upper_open: bool = False

    @classmethod
    def from_wire(cls, obj: Any) -> KeyRange:
        """Read a decoded TSON range, refusing what IndexedDB would refuse."""
        if not isinstance(obj, dict):
            raise ValueError(f"a key range must be an object, not {obj!r}")
        kind = obj.get("type")
        if type(kind) is not int or kind not in (EQUAL, RANGE, ANY, NEVER):
            raise ValueError(f"unknown key range type {kind!r}")
        lower, upper = obj.get("lower", UNDEFINED), obj.get("upper", UNDEFINED)
        if kind == EQUAL:
            if not is_valid_key(lower):
                raise ValueError(f"equal range: {lower!r} is not a valid key")
            return cls(EQUAL, lower, lower)
        if kind == RANGE:
            for name, bound in (("lower", lower), ("upper", upper)):
                if bound is not UNDEFINED and not is_valid_key(bound):
                    raise ValueError(f"range: {name} bound {bound!r} is not a valid key")
        return cls(kind, lower, upper, _open_flag(obj, "lowerOpen"), _open_flag(obj, "upperOpen"))

    def contains(self, key: Any) -> bool:
        """Whether ``key`` is a valid key inside this range."""
        if self.type == NEVER or not is_valid_key(key):
            return False
        if self.type == ANY:
            return True
        if self.type == EQUAL:
            return compare_keys(key, self.lower) == 0
        if self.lower is not UNDEFINED:
            order = compare_keys(key, self.lower)
            if order < 0 or (order == 0 and self.lower_open):
                return False
        if self.upper is not UNDEFINED:
            order = compare_keys(key, self.upper)
            if order > 0 or (order == 0 and self.upper_open):
                return False
        return True

    @property
    def has_array_bound(self) -> bool:
        """Whether a bound is an array key (other than maxKey): then array
        values are compared as whole keys, not as multiEntry elements."""
        if self.type in (ANY, NEVER):
            return False
        return any(
            isinstance(bound, list) and bound != _MAX_KEY for bound in (self.lower, self.upper)
        )


def _open_flag(obj: dict, name: str) -> bool:
    flag = obj.get(name, UNDEFINED)
    if flag is UNDEFINED or flag is None:
        return False  # missing means closed
    if not isinstance(flag, bool):
        raise ValueError(f"{name} must be a boolean, not {flag!r}")
    return flag


@dataclass(frozen=True)
class Criteria:
    """``{index, range}``: the objects whose ``index`` key lies in ``range``.

    ``index`` None is the primary key; otherwise it is an index name read as a
    key path: ``"name"``, ``"address.city"`` or compound ``"[first+last]"``.
    """

    index: str | None
    range: KeyRange
    # A key path (str), a compound key path (tuple) or None for the primary key.
    _key_path: str | tuple[str, ...] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_key_path", _parse_index(self.index))

    @classmethod
    def from_wire(cls, obj: Any) -> Criteria:
        """Read decoded TSON criteria; ValueError says what is wrong."""
        if not isinstance(obj, dict):
            raise ValueError(f"criteria must be an object, not {obj!r}")
        index = obj.get("index", UNDEFINED)
        if index is UNDEFINED or index is None or index == "":
            index = None
        elif not isinstance(index, str):
            raise ValueError(f"criteria index must be a string or null, not {index!r}")
        if "range" not in obj:
            raise ValueError("criteria without a range")
        return cls(index, KeyRange.from_wire(obj["range"]))

    def matches(self, obj: dict, primary_key: Any) -> bool:
        """Whether the object (stored under decoded ``primary_key``) is selected."""
        key_range = self.range
        if key_range.type == NEVER:
            return False
        key_path = self._key_path
        if key_path is None:
            return key_range.contains(primary_key)
        if isinstance(key_path, tuple):
            # Compound: every component must be a key, else IndexedDB skips the object.
            return key_range.contains([get_by_key_path(obj, path) for path in key_path])
        value = get_by_key_path(obj, key_path)
        if not isinstance(value, list) or key_range.has_array_bound:
            return key_range.contains(value)
        # The schema does not say whether the index is multiEntry; an array value
        # under a non-array range can only have been found through its elements.
        return any(key_range.contains(item) for item in value)


def _parse_index(index: str | None) -> str | tuple[str, ...] | None:
    """The key path of an index name, as Dexie parses ``[a+b]`` schema syntax."""
    if index is None or not index.startswith("["):
        return index
    if not index.endswith("]") or len(index) < 3:
        raise ValueError(f"malformed compound index {index!r}")
    return tuple(index[1:-1].split("+"))
