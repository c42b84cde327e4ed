"""Compliance routing: decides per order where it goes, or why it goes nowhere."""
