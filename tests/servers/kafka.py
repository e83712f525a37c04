"""Placeholder: real local kafka server fixtures (being written)."""
