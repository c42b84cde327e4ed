"""Cin7 Omni connector: a sales channel polled for sales orders, taking dispatches back.

Cin7 Omni has no webhook for sales-order changes, so orders are pulled page by page on their
ModifiedDate (`orders.py`, `cursor.py`), filtered by the ShipStation connector's import rules
(`rules.py`), and written back as a dispatch (`dispatch.py`). See README.md.
"""
