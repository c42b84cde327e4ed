"""Mintsoft status names ordersync acts on; their ids are read from the account at run time."""

from __future__ import annotations

# Mintsoft publishes status ids (DESPATCHED is 4) but tells integrators to read them from
# `GET /api/Order/Statuses`, so only the names live here.
DESPATCHED_STATUSES = frozenset({"DESPATCHED"})
CANCELLED_STATUSES = frozenset({"CANCELLED"})
