"""Independent work as Ray tasks: on a local Ray cluster or on a lab's cluster of machines.

The benchmarks, simulated campaigns, ensemble training and inverse design over many targets all
send their independent pieces of work here. It lives in `data`, the bottom layer, so that
`surrogates`, `design` and `campaigns` can all use it.

`ray_map` sends each piece (a picklable function and its arguments) to Ray as one task of one
CPU and yields each result as it finishes (`ray.wait`), so a benchmark can print and save each
run as it does with local processes; `ray_gather` returns them all in task order. Each task runs
on one torch thread, as local runs do, so a seeded piece gives the same numbers wherever it runs.
`ray_session` holds one connection for a block, so that many calls (the batches of a campaign)
share one cluster instead of starting one each.

Where it runs (`RayCluster.address`, or the `--ray` option):
- `"auto"`: this machine. Joins the Ray cluster already running here (`ray start --head`), or
  else starts a new one with `workers` CPUs (default: this machine's cores), stopped afterwards.
- `"HOST:PORT"` (the head's GCS port, 6379 by default) or `"ray://HOST:10001"` (Ray Client):
  joins that cluster. Every machine of it needs the same Valley and Python as this one.

Ray is an optional dependency (`pip install 'valley[ray]'`); without it, or when the cluster
cannot be reached, `RayUnavailable` says so in one line.

Example:
    >>> for index, result, error in ray_map(pow, [(2, 3), (3, 2)], "auto", workers=2):
    ...     print(index, result, error)
    >>> ray_gather(pow, [(2, 3), (3, 2)], RayCluster("auto", workers=2))
    [8, 9]
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
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


class RayTaskLost(RuntimeError):
    """Ray lost a task of `ray_gather` (its worker died, its machine left the cluster)."""


@dataclass(frozen=True)
class RayCluster:
    """Where Ray tasks run: the `ray=` argument of the functions that fan out their work.

    Attributes:
        address: `"auto"` (this machine), `"HOST:PORT"` or `"ray://HOST:PORT"` (see the module docstring).
        workers: With `"auto"` and no cluster running here, the CPUs of the local cluster started;
            on a running cluster, the most tasks in flight at a time. None: every CPU.

    Example:
        >>> NeuralEnsemble(5, ray=RayCluster("auto", workers=4))   # or simply ray="auto"
    """

    address: str = "auto"
    workers: int | None = None

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise RayUnavailable(f"`workers` must be at least 1. Got {self.workers} instead.")
        _check_address(self.address)


def as_cluster(ray: str | RayCluster | None) -> RayCluster | None:
    """`ray` as a `RayCluster` (an address string becomes `RayCluster(address)`); None stays None (run here)."""
    if ray is None or isinstance(ray, RayCluster):
        return ray
    if isinstance(ray, str):
        return RayCluster(ray)
    raise RayUnavailable(f"`ray` must be None, an address string or a `RayCluster`. Got {ray!r} instead.")


@contextmanager
def ray_session(ray: str | RayCluster, say: Say | None = None) -> Iterator[None]:
    """Hold one connection to Ray for the block: the `ray_map` / `ray_gather` calls inside share it.

    Without it, each call connects and disconnects, and with `"auto"` starts and stops a local
    cluster of its own (about 6 s each). A connection this process already has is used and kept.

    Args:
        ray: Where the tasks run (`RayCluster`, or its address).
        say: Called with one line on where the tasks run; default: no line.

    Raises:
        RayUnavailable: If Ray is not installed, the address is malformed or nothing answers there.
    """
    cluster = as_cluster(ray)
    assert cluster is not None
    with _session(cluster.address, cluster.workers, say or _quiet):
        yield


def ray_gather(
    function: Callable[..., Any], tasks: Sequence[tuple], ray: str | RayCluster, say: Say | None = None
) -> list[Any]:
    """`[function(*task) for task in tasks]`, each call a Ray task of one CPU and one torch thread.

    The results come back in task order, whatever order the tasks finish in. Inside a
    `ray_session` the calls use its connection; else one is made for this call.

    Args:
        function: A picklable function (module-level, or a closure Ray can serialize), whose
            modules import on every machine of the cluster.
        tasks: Argument tuples, one per call.
        ray: Where the tasks run (`RayCluster`, or its address).
        say: Called with one line on where the tasks run; default: no line.

    Returns:
        The results, one per task, in the order of `tasks`.

    Raises:
        RayUnavailable: If Ray is not installed, the address is malformed or nothing answers there.
        RayTaskLost: If Ray lost a task (the others still queued are cancelled).
        Exception: What the function raised in a task, raised here as itself (the first to finish),
            the others still queued being cancelled.
    """
    cluster = as_cluster(ray)
    assert cluster is not None
    results: dict[int, Any] = {}
    for index, result, error in ray_map(_Catching(function), tasks, cluster.address, cluster.workers, say or _quiet):
        if error:
            raise RayTaskLost(f"Ray lost task {index} of {len(tasks)}: {error}")
        if isinstance(result, _FunctionError):
            raise result.error
        results[index] = result
    return [results[i] for i in range(len(tasks))]


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


@dataclass
class _FunctionError:
    """What a function of `ray_gather` raised, carried back as a result (`ray_map` reports lost tasks only)."""

    error: Exception


class _Catching:
    """`function(*args)`, an exception it raises returned (wrapped) rather than raised, for `ray_gather`."""

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function = function

    def __call__(self, *args: Any) -> Any:
        try:
            return self.function(*args)
        except Exception as error:  # noqa: BLE001 - re-raised in the caller's process by `ray_gather`
            return _FunctionError(error)


def _quiet(line: str) -> None:
    """A `say` that says nothing (library calls do not print)."""


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
