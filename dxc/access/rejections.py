"""Why the server refuses a client transaction.

A refusal never fails the request: the transaction is rolled back, listed
in the answer's ``rejections`` and its keys are sent back with the server's
state, which is how the client undoes its local change.
"""

from __future__ import annotations


class Rejection(Exception):
    """The server refuses a client transaction; the message tells the client why."""

    name = "Rejected"


class PermissionDenied(Rejection):
    name = "PermissionDenied"


class InvalidOperation(Rejection):
    name = "InvalidOperation"
