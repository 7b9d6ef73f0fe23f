"""Shared test settings: small GP problems run fastest on one thread."""

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def cluster():
    """A local Ray cluster of 2 CPUs shared by the Ray tests; `--ray auto` / `ray="auto"` runs on it while it is up."""
    from tests.ray_support import start_cluster

    ray = start_cluster()
    yield ray
    ray.shutdown()
