"""Builds the compiled core of grouping (processors/grouping/_core.c); everything else is in pyproject.toml."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("processors.grouping._core", ["processors/grouping/_core.c"],
                             extra_compile_args=["-O2", "-ffp-contract=off"])])  # fmt: skip
