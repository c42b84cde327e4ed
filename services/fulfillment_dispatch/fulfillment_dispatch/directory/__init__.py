"""Real-time customer look-ups for the booking engine and the back office (CustomerDirectoryService):
members and their clubs from a tenant's directory account (VinSuite), behind a per-process cache
that upserts and member-type syncs invalidate in every replica, and the tenant's automated
discount rules.

- lookups.py: the work (account choice, cache, directory calls bounded in time, upsert).
- cache.py: the TTL cache with single-flight misses and per-tenant invalidation.
- invalidation.py: the NOTIFY announcing a tenant's change, and each process's listener.
- discounts.py: which discount rule applies, and why.
- servicer.py: the gRPC servicer.
"""
