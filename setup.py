"""Builds the optional C accelerator; everything else is declared in pyproject.toml.

``optional=True``: where no C compiler is available the build goes on without
it, and streamspec runs its pure-Python fast paths instead.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("streamspec._speedups", ["src/streamspec/_speedups.c"], optional=True),
    ],
)
