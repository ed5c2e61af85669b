"""Who may read and write what: realms, members, roles and invitations.

* ``principal``: the caller, from its token.
* ``permissions``: permission sets and how they combine.
* ``members``: member rows' states and the fields only the server sets.
* ``index``: writing objects with the access index kept in step.
* ``realm_access``: a principal's realm sets and effective permissions.
* ``rules``: whether one write is allowed; ``lifecycle``: what must hold
  when a transaction ends.

``docs/access-control.md`` lists where the server follows the documented
semantics rather than the client's own permission helpers.
"""

from dxc.access.index import ACCESS_TABLES, REALMS_TABLE, ROLES_TABLE
from dxc.access.principal import ANONYMOUS, GLOBAL_WRITE, Principal
from dxc.access.realm_access import PUBLIC_REALM, RealmAccess, RealmSet

__all__ = [
    "ACCESS_TABLES",
    "ANONYMOUS",
    "GLOBAL_WRITE",
    "PUBLIC_REALM",
    "REALMS_TABLE",
    "ROLES_TABLE",
    "Principal",
    "RealmAccess",
    "RealmSet",
]
