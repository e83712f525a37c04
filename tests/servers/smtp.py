"""Placeholder: real local smtp server fixtures (being written)."""
