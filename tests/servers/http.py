"""Placeholder: real local http server fixtures (being written)."""
