"""Independent benchmark runs as Ray tasks: the benchmarks' door to `data.ray_tasks`.

The session and address handling (`--ray auto`, `HOST:PORT`, `ray://HOST:PORT`) lives in
`data.ray_tasks`, where the product's own fan-out (simulated campaigns, ensemble members,
inverse-design target groups) uses it too; the benchmarks import it from here as before.

Example:
    >>> for index, result, error in ray_map(pow, [(2, 3), (3, 2)], "auto", workers=2):
    ...     print(index, result, error)
"""

from __future__ import annotations

from data.ray_tasks import (
    RAY_ADDRESSES,
    RAY_MISSING,
    RayCluster,
    RayUnavailable,
    _running_here,
    _session,
    ray_gather,
    ray_map,
    ray_session,
)

__all__ = [
    "RAY_ADDRESSES",
    "RAY_MISSING",
    "RayCluster",
    "RayUnavailable",
    "_running_here",
    "_session",
    "ray_gather",
    "ray_map",
    "ray_session",
]
