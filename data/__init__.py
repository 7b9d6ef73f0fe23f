"""Bundled systems (simulators with their campaign configs) and loaders for user data files."""

from __future__ import annotations

from data.core import System, is_safe, sample_designs, satisfies_constraints
from data.loaders import DataFileError, read_table
from data.systems import get_system, list_systems

__all__ = [
    "DataFileError",
    "System",
    "get_system",
    "is_safe",
    "list_systems",
    "read_table",
    "sample_designs",
    "satisfies_constraints",
]
