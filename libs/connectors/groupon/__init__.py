"""Groupon Goods connector (CommerceInterface supplier API v4): a sales channel polled for line
items, marked exported once the warehouse has the order, and given tracking per line. See
README.md."""
