"""Shared test settings: small GP problems run fastest on one thread; how `make test` splits the suite over cores."""

import pytest
import torch

torch.set_num_threads(1)

RAY_MODULES = ("tests/test_ray_benchmark.py", "tests/test_ray_fanout.py")  # one local Ray cluster (`cluster` below)


def pytest_collection_modifyitems(items):
    """Under pytest-xdist's `--dist loadgroup` (`make test`), each module's tests run in one worker, in order.

    A module's expensive fixtures are then built once, and the Ray modules share one worker, so that
    one Ray cluster is started instead of one per worker. Without xdist the marks do nothing.
    """
    for item in items:
        module = item.nodeid.split("::")[0]  # the test file, relative to the root
        item.add_marker(pytest.mark.xdist_group("ray" if module in RAY_MODULES else module))


@pytest.fixture(scope="session")
def cluster():
    """A local Ray cluster of 2 CPUs shared by the Ray tests; `--ray auto` / `ray="auto"` runs on it while it is up."""
    from tests.ray_support import start_cluster

    ray = start_cluster()
    yield ray
    ray.shutdown()


@pytest.fixture(autouse=True)
def _debug_off_after_each_test():
    """Turn `--debug` off after each test: it is a process-wide flag.

    A test whose last command ran with `valley --debug` left it on, and the next test in that
    worker got tracebacks instead of error lines (6 `design` CLI tests failed so in one CI run).
    """
    yield
    from campaigns.console import set_debug

    set_debug(False)
