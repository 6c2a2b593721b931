"""Generates the protobuf modules while the project is built, so they are never committed.

They are generated as soon as setuptools loads this file, not only in build_py: collecting
metadata (egg_info, the sdist's file list) already looks for the package directory
``tritone_protos``, which a clean clone does not have.
"""

import sys
from pathlib import Path

from setuptools import setup

sys.path.insert(0, str(Path(__file__).parent / "tools"))

import gen_protos  # tools/ is on the path only from here

gen_protos.generate()
setup()
