"""Independent benchmark runs as Ray tasks: on a local Ray cluster or on a lab's cluster of machines.

`ray_map` sends each run (a picklable, module-level function and its arguments) to Ray as one
task of one CPU and yields each result as it finishes (`ray.wait`), so a benchmark can print and
save each run as it does with local processes. Each task runs on one torch thread, as local runs
do, so a seeded run gives the same numbers wherever it runs.

Where it runs (`address`):
- `"auto"`: this machine. Joins the Ray cluster already running here (`ray start --head`), or
  else starts a new one with `workers` CPUs (default: this machine's cores), stopped afterwards.
- `"HOST:PORT"` (the head's GCS port, 6379 by default) or `"ray://HOST:10001"` (Ray Client):
  joins that cluster. Every machine of it needs the same Valley and Python as this one.

Ray is an optional dependency (`pip install 'valley[ray]'`); without it, or when the cluster
cannot be reached, `RayUnavailable` says so in one line.

Example:
    >>> for index, result, error in ray_map(pow, [(2, 3), (3, 2)], "auto", workers=2):
    ...     print(index, result, error)
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

RAY_MISSING = "ray not installed: pip install 'valley[ray]'"
RAY_ADDRESSES = "`auto`, HOST:PORT (e.g. head:6379) or ray://HOST:PORT (e.g. ray://head:10001)"
AUTH_HINT = (
    ". If the cluster uses token authentication (the default of `ray start` since Ray 2.59), set "
    "RAY_AUTH_MODE=token and give its token (`ray get-auth-token` on the head) in ~/.ray/auth_token."
)
MANY = 1 << 30  # no limit of our own on the tasks in flight: Ray queues them for free CPUs
CONNECT_SECONDS = 5.0  # a cluster address that does not answer within this long is reported at once

Say = Callable[[str], None]


class RayUnavailable(ValueError):
    """Ray is not installed, the address is malformed, or no Ray cluster answers there."""


def ray_map(
    function: Callable[..., Any],
    tasks: Sequence[tuple],
    address: str,
    workers: int | None = None,
    say: Say | None = None,
) -> Iterator[tuple[int, Any, str]]:
    """Run `function(*task)` for every task as a Ray task; yield `(index, result, error)` as each finishes.

    `error` is empty when the task returned, else one line saying why Ray lost it (a worker that
    died, a machine that left the cluster); `result` is then None. Errors the function itself
    catches are its own business (a benchmark reports them in its row).

    Args:
        function: A module-level function, importable on every machine of the cluster.
        tasks: Argument tuples, one per run.
        address: `"auto"`, `"HOST:PORT"` or `"ray://HOST:PORT"` (see the module docstring).
        workers: CPUs of the local cluster that `"auto"` starts; on a cluster that was already
            running, the most tasks in flight at a time. Default: every CPU of the cluster.
        say: Called with one line on where the tasks run (default: `print`).

    Raises:
        RayUnavailable: If Ray is not installed, `address` is malformed or nothing answers there.
    """
    if workers is not None and workers < 1:
        raise RayUnavailable(f"`workers` must be at least 1. Got {workers} instead.")
    if not tasks:
        return
    with _session(address, workers, say or print) as (ray, limit):
        remote = ray.remote(num_cpus=1, max_retries=0)(_on_one_thread)
        todo = list(enumerate(tasks))
        pending: dict[Any, int] = {}  # object ref -> task index
        try:
            while todo or pending:
                while todo and len(pending) < limit:  # Ray's pattern for a bounded number of pending tasks
                    index, task = todo.pop(0)
                    pending[remote.remote(function, *task)] = index
                (ready,), _ = ray.wait(list(pending), num_returns=1)
                index = pending.pop(ready)
                try:
                    result, error = ray.get(ready), ""
                except ray.exceptions.RayError as lost:  # the task, not the function, failed
                    result, error = None, _one_line(lost)
                yield index, result, error
        finally:  # interrupted (Ctrl-C, an error while saving a row): stop what is still queued
            for ref in pending:
                ray.cancel(ref, force=True)


def _check_address(address: str) -> None:
    """Refuse, in one line, an `address` that is neither `"auto"` nor `HOST:PORT` / `ray://HOST:PORT`."""
    if address == "auto":
        return
    host, port = _host_port(address)
    if not host or not port.isdigit():
        raise RayUnavailable(f"--ray must be {RAY_ADDRESSES}. Got {address!r} instead.")


def _on_one_thread(function: Callable[..., Any], *args: Any) -> Any:
    """`function(*args)` on one torch thread, as local benchmark runs are (results do not depend on the process)."""
    import torch

    torch.set_num_threads(1)
    return function(*args)


@contextmanager
def _session(address: str, workers: int | None, say: Say) -> Iterator[tuple[Any, int]]:
    """Connected to Ray for the block: yields the `ray` module and the most tasks to keep in flight.

    A connection this process already has (e.g. a test's `ray.init`) is used and kept; one made
    here is closed afterwards, which also stops a local cluster started here.
    """
    ray = _import_ray()
    _check_address(address)
    if ray.is_initialized():
        yield ray, workers or MANY
        return
    quiet = {"logging_level": logging.ERROR, "log_to_driver": False}
    if address == "auto" and _running_here() is None:
        cpus = workers or os.cpu_count() or 1
        ray.init(address="local", num_cpus=cpus, include_dashboard=False, **quiet)  # a new cluster, always
        source = "--ray-workers" if workers else "this machine's cores"
        where = f"started a local Ray cluster with {cpus} worker CPU(s) ({source})"
    elif address == "auto":
        try:
            ray.init(address="auto", **quiet)  # the one `ray start --head` runs here (its token found as Ray does)
        except Exception as error:  # noqa: BLE001 - Ray raises many kinds here; each becomes one line
            raise RayUnavailable(f"could not join the Ray cluster on this machine: {_one_line(error)}") from None
        where = f"joined the Ray cluster running on this machine ({_running_here()})"
    else:
        _check_reachable(address)
        try:
            ray.init(address=address, **quiet)
        except Exception as error:  # noqa: BLE001 - Ray raises many kinds here; each becomes one line
            hint = "" if os.environ.get("RAY_AUTH_MODE") == "token" else AUTH_HINT
            raise RayUnavailable(f"could not join the Ray cluster at {address}: {_one_line(error)}{hint}") from None
        where = f"joined the Ray cluster at {address}"
    try:
        cpus = _cluster_cpus(ray)
        say(f"Ray: {where}; {cpus} CPU(s) in the cluster, {min(workers or cpus, cpus)} run(s) at a time.")
        yield ray, workers or MANY
    finally:
        ray.shutdown()


def _running_here() -> str | None:
    """The address of the Ray cluster that `ray.init(address="auto")` would join, if one answers there.

    Ray finds it in RAY_ADDRESS or in the record `ray start` leaves in its temp folder. A record left
    by a head that stopped without `ray stop` points nowhere, and Ray would retry it for minutes.
    """
    try:
        from ray._private.services import canonicalize_bootstrap_address  # Ray's own lookup for "auto"

        address = canonicalize_bootstrap_address("auto")
    except Exception:  # noqa: BLE001 - none found (ConnectionError), or a Ray without this helper
        return None
    if not address:
        return None
    try:
        _check_reachable(address)
    except RayUnavailable:
        return None
    return address


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RayUnavailable(RAY_MISSING) from None
    return ray


def _cluster_cpus(ray: Any) -> int:
    return max(int(ray.cluster_resources().get("CPU", 1)), 1)


def _host_port(address: str) -> tuple[str, str]:
    rest = address.removeprefix("ray://")
    host, _, port = rest.rpartition(":")
    return host.strip("[]"), port


def _check_reachable(address: str) -> None:
    """Fail fast, in one line, where nothing listens (Ray itself would retry for minutes)."""
    host, port = _host_port(address)
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_SECONDS):
            pass
    except OSError as error:
        raise RayUnavailable(
            f"no Ray cluster answers at {address} ({error.strerror or type(error).__name__}). Start one there "
            "with `ray start --head`, check the address, or use --ray auto for this machine."
        ) from None


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[-1] if text else ''}".strip().rstrip(":")
