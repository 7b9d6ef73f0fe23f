"""Design campaigns: config, measurements, proposals, storage, CLI and simulated campaigns."""

from campaigns.campaign import Campaign, ImportReport
from campaigns.config import CampaignConfig, load_config

__all__ = ["Campaign", "CampaignConfig", "ImportReport", "load_config"]
