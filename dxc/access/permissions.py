"""``DBPermissionSet``: what a member may do in a realm, and how sets combine.

``{add?: '*' | [table], update?: '*' | {table: '*' | [prop]}, manage?: '*' | [table]}``
(spec A2.5). The client merges sets with a helper that drops tables found
only in a later set and lets ``'*'`` in ``update`` cover ``realmId``; the
server follows the documented semantics instead (``docs/access-control.md``):
a union that never loses a table, and ``owner``/``realmId`` only when listed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: ``'*'``: every table (or every non-reserved property).
ALL = "*"
#: Properties that ``'*'`` does not cover: they must be listed by name.
RESERVED_PROPS = frozenset({"owner", "realmId"})

Tables = str | frozenset[str]  # ALL or table names
Props = str | frozenset[str]  # ALL or property names (may contain ALL)


@dataclass(frozen=True)
class Permissions:
    add: Tables = frozenset()
    update: str | Mapping[str, Props] = field(default_factory=dict)
    manage: Tables = frozenset()

    @classmethod
    def parse(cls, value: Any) -> Permissions:
        """A permission set from stored data; anything malformed grants nothing."""
        if not isinstance(value, dict):
            return NONE
        update = value.get("update")
        if update == ALL:
            parsed_update: str | dict[str, Props] = ALL
        elif isinstance(update, dict):
            parsed_update = {
                table: props if props == ALL else _names(props)
                for table, props in update.items()
                if isinstance(table, str) and (props == ALL or isinstance(props, list))
            }
        else:
            parsed_update = {}
        return cls(_tables(value.get("add")), parsed_update, _tables(value.get("manage")))

    def to_json(self) -> Any:
        """The wire form (sorted), as stored in the access index."""
        update = (
            ALL
            if self.update == ALL
            else {t: p if p == ALL else sorted(p) for t, p in sorted(self.update.items())}
        )
        return {
            "add": _wire(self.add),
            "update": update,
            "manage": _wire(self.manage),
        }

    def can_manage(self, table: str) -> bool:
        return self.manage == ALL or table in self.manage

    def can_add(self, table: str) -> bool:
        return self.can_manage(table) or self.add == ALL or table in self.add

    def can_update(self, table: str, props: Iterable[str]) -> bool:
        """May every one of ``props`` (top-level property names) change?"""
        if self.can_manage(table):
            return True
        granted = ALL if self.update == ALL else self.update.get(table, frozenset())
        for prop in props:
            if prop in RESERVED_PROPS:
                if granted == ALL or prop not in granted:
                    return False
            elif not (granted == ALL or prop in granted or ALL in granted):
                return False
        return True

    def can_delete(self, table: str) -> bool:
        """Deleting objects one does not own needs ``manage``."""
        return self.can_manage(table)

    def covers(self, other: Permissions) -> bool:
        """Does this set allow everything ``other`` allows? (Nobody grants more
        than they hold.)"""
        if self.manage == ALL:
            return True
        if other.manage == ALL or not all(self.can_manage(t) for t in other.manage):
            return False
        if other.add == ALL:
            if self.add != ALL:
                return False
        elif not all(self.can_add(t) for t in other.add):
            return False
        if other.update == ALL:
            return self.update == ALL
        return all(self._covers_update(t, props) for t, props in other.update.items())

    def _covers_update(self, table: str, props: Props) -> bool:
        if props == ALL or ALL in props:
            granted = ALL if self.update == ALL else self.update.get(table, frozenset())
            if not (self.can_manage(table) or granted == ALL or ALL in granted):
                return False
            props = frozenset() if props == ALL else props - {ALL}
        return self.can_update(table, props)


NONE = Permissions()
FULL = Permissions(manage=ALL)


def union(sets: Iterable[Permissions]) -> Permissions:
    """Everything any of ``sets`` allows."""
    add: Tables = frozenset()
    manage: Tables = frozenset()
    update: str | dict[str, Props] = {}
    for permissions in sets:
        add = _union(add, permissions.add)
        manage = _union(manage, permissions.manage)
        if update == ALL or permissions.update == ALL:
            update = ALL
            continue
        for table, props in permissions.update.items():
            update[table] = _union(update.get(table, frozenset()), props)
    return Permissions(add, update, manage)


def dumps(permissions: Permissions) -> str:
    return json.dumps(permissions.to_json(), sort_keys=True, separators=(",", ":"))


def loads(text: str | None) -> Permissions:
    return NONE if text is None else Permissions.parse(json.loads(text))


def _union(a: Tables, b: Tables) -> Tables:
    if a == ALL or b == ALL:
        return ALL
    return a | b


def _names(value: Any) -> frozenset[str]:
    return frozenset(v for v in value if isinstance(v, str))


def _tables(value: Any) -> Tables:
    if value == ALL:
        return ALL
    return _names(value) if isinstance(value, list) else frozenset()


def _wire(tables: Tables) -> Any:
    return ALL if tables == ALL else sorted(tables)
