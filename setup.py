"""Shim for Beam's ``--setup_file``: the package itself is declared in pyproject.toml.

Dataflow stages this project for its workers by running ``python setup.py sdist`` (or
``python -m build --sdist`` when ``build`` is installed); setuptools reads everything from
pyproject.toml, so there is nothing to keep in sync here.
"""

from setuptools import setup

setup()
