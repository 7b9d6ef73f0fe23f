"""Design campaigns: config, measurements, proposals, storage, CLI and simulated campaigns.

The public names load on first use (PEP 562), so that `import campaigns.cli` (and
`valley --help`) does not import torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers, which do not run `__getattr__`
    from campaigns.campaign import Campaign, ImportReport
    from campaigns.config import CampaignConfig, load_config

__all__ = ["Campaign", "CampaignConfig", "ImportReport", "load_config"]
_HOMES = {"Campaign": "campaign", "ImportReport": "campaign", "CampaignConfig": "config", "load_config": "config"}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(import_module(f"campaigns.{_HOMES[name]}"), name)
    raise AttributeError(f"module 'campaigns' has no attribute {name!r}")
