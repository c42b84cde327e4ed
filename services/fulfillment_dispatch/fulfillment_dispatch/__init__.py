"""Fulfillment dispatch: sends routed orders to their provider and reports what the provider does."""
