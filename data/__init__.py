"""Bundled systems (simulators with their campaign configs) and loaders for user data files."""

from __future__ import annotations

from data import hyperelastic
from data.core import System, is_safe, sample_designs, satisfies_constraints
from data.loaders import DataFileError, read_table
from data.ppi import make_ppi_pairs
from data.systems import get_system, list_systems

__all__ = [
    "DataFileError",
    "System",
    "get_system",
    "hyperelastic",
    "is_safe",
    "list_systems",
    "make_ppi_pairs",
    "read_table",
    "sample_designs",
    "satisfies_constraints",
]
