"""Fixtures shared by every test folder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module")
def torch_threads_for_tests() -> Iterator[None]:
    """Torch threads for a module: $OMP_NUM_THREADS when set (the suite is run at several
    thread counts to show its tolerances hold), else one: the machine's cores are shared with
    other work (a gateway, Triton, other test runs) and the models are tiny, so a second
    thread mostly spins.

    Use with ``pytestmark = pytest.mark.usefixtures("torch_threads_for_tests")``.
    """
    import torch  # here, not at the top: most tests never load torch

    from support.hf_reference import threads_for_tests

    threads = torch.get_num_threads()
    torch.set_num_threads(threads_for_tests())
    yield
    torch.set_num_threads(threads)
