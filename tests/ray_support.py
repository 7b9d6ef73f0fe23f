"""The real local Ray cluster that the Ray tests share (`pytest -k ray`).

One cluster of 2 CPUs is started for the whole session at the first test that asks for it and
stopped at the end: starting one, and its workers' first imports of torch and Valley, take
15-20 s. Without Ray installed those tests skip, saying why; with VALLEY_REQUIRE_RAY=1 (as
.ci/run sets) they fail instead.
"""

from __future__ import annotations

import logging
import os

import pytest

REQUIRED = os.environ.get("VALLEY_REQUIRE_RAY") == "1"


def import_ray():
    """The `ray` module, or skip (fail with VALLEY_REQUIRE_RAY=1) where it is not installed."""
    try:
        import ray
    except ImportError:
        if REQUIRED:
            pytest.fail("VALLEY_REQUIRE_RAY=1 but ray is not installed: pip install -e '.[dev]'")
        pytest.skip("ray not installed (pip install 'valley[ray]'); VALLEY_REQUIRE_RAY=1 makes this a failure")
    return ray


def start_cluster():
    """Start the local cluster of 2 CPUs; each worker imports Valley while the first test computes here."""
    ray = import_ray()
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    warm = ray.remote(num_cpus=1)(_import_valley)
    for _ in range(2):
        warm.remote()
    return ray


def _import_valley() -> None:
    import design.inverse.fanout  # noqa: F401 - torch, botorch, Valley's packages: what every task needs
    import surrogates.ensemble  # noqa: F401
