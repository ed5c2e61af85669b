"""The scopes an access token may carry, named once.

``docs/auth.md`` says who gets which: users ``ACCESS_DB``, the CLI's e-mail
login ``CONNECT_CLIENT`` (or ``CREATE_DB`` on ``/service``), API clients what
they were authorised with.
"""

from __future__ import annotations

ACCESS_DB = "ACCESS_DB"
GLOBAL_READ = "GLOBAL_READ"
GLOBAL_WRITE = "GLOBAL_WRITE"
MANAGE_DB = "MANAGE_DB"
DELETE_DB = "DELETE_DB"
IMPERSONATE = "IMPERSONATE"
CONNECT_CLIENT = "CONNECT_CLIENT"
CREATE_DB = "CREATE_DB"

#: What the key written for the CLI may do (the CLI asks for exactly these).
ADMIN_SCOPES = (ACCESS_DB, IMPERSONATE, MANAGE_DB, DELETE_DB, GLOBAL_READ, GLOBAL_WRITE)
#: Any one of these lets a token sync; the others prove an e-mail address, not a right to data.
DATA_SCOPES = frozenset({ACCESS_DB, GLOBAL_READ, GLOBAL_WRITE})
#: What reading, and writing, every object of a database takes (REST, users, export).
READ_ALL = (ACCESS_DB, GLOBAL_READ)
WRITE_ALL = (ACCESS_DB, GLOBAL_READ, GLOBAL_WRITE)
