"""Placeholder: real local slack server fixtures (being written)."""
