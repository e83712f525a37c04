"""Builds the compiled core of grouping (processors/_dedup_core.c); everything else is in pyproject.toml."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("processors._dedup_core", ["processors/_dedup_core.c"], extra_compile_args=["-O2", "-ffp-contract=off"])])
