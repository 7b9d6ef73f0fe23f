"""The registry of bundled systems: look one up by name and get a fresh copy."""

from __future__ import annotations

import copy
import dataclasses

from data.core import System
from data.nanoparticles import NANOPARTICLES
from data.problems import GARDNER, GRAMACY, PRESSURE_VESSEL, SPRING, THREE_BAR_TRUSS, WELDED_BEAM

__all__ = ["System", "get_system", "list_systems"]

_SYSTEMS: dict[str, System] = {
    system.name: system
    for system in (NANOPARTICLES, GARDNER, SPRING, PRESSURE_VESSEL, WELDED_BEAM, GRAMACY, THREE_BAR_TRUSS)
}


def list_systems() -> list[str]:
    """Return the names of the bundled systems, in a fixed order.

    Example:
        >>> list_systems()
        ['nanoparticles', 'gardner', 'spring', 'pressure_vessel', 'welded_beam', 'gramacy', 'three_bar_truss']
    """
    return list(_SYSTEMS)


def get_system(name: str) -> System:
    """Return the bundled system called `name`, with its own copy of the config.

    The copy means a caller may edit `system.config` (say, its seed) without changing
    what the next caller gets.

    Args:
        name: One of `list_systems()`.

    Returns:
        The `System`.

    Raises:
        ValueError: If no bundled system has that name.

    Example:
        >>> system = get_system("nanoparticles")
        >>> system.objective, system.maximize
        ('tcell_activation', True)
    """
    if name not in _SYSTEMS:
        raise ValueError(
            f"`name` must be one of {list_systems()}. Got {name!r} instead. "
            "Pick a bundled system by one of those names."
        )
    system = _SYSTEMS[name]
    return dataclasses.replace(system, config=copy.deepcopy(system.config))
