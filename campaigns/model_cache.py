"""The fitted GPs of a campaign, kept in its directory so that asking again does not refit.

Each entry is the `state_dict` of every outcome's GP (hyperparameters and standardization, no
code), written with `torch.save` and read back with `weights_only=True`: no pickle. An entry is
keyed by a hash of the model's recipe (config, outcome scales) and of the exact training data:
the same key means the same fit, which is loaded as it is, with no optimizer step, so a cached
fit gives exactly the proposals a fresh one would.

New data mean a new fit from the usual starting point, not from the last fit's
hyperparameters. That warm start was tried and dropped: it made a campaign's proposals depend
on the history of its cache, and on the nanoparticle benchmark its best safe activations were
lower (4.65 and 4.22 on seeds 0 and 1, against 5.45 and 6.75 with fresh fits; two seeds, so
perhaps chance, but no gain to pay for it).

A file that cannot be read, or whose states do not fit the model, is ignored with a note and
replaced at the next fit; the campaign's measurements are never touched by it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

CACHE_DIR = "model_cache"
KEEP = 4  # entries kept (the newest): enough for `propose` and `design` on the same data


@dataclass(frozen=True)
class CachedFit:
    """One cached fit: a state per outcome GP, in the order of the outcomes."""

    key: str
    states: list[dict[str, Tensor]]


def fingerprint(recipe: str, *tensors: Tensor | None) -> str:
    """A hash of `recipe` and of the shapes and bytes of `tensors` (None counts as absent)."""
    h = hashlib.sha256(recipe.encode())
    for t in tensors:
        h.update(b"none" if t is None else repr(tuple(t.shape)).encode() + t.detach().cpu().numpy().tobytes())
    return h.hexdigest()


class ModelCache:
    """Cached GP fits in `<campaign>/model_cache/`, newest `KEEP` entries.

    Example:
        >>> cache = ModelCache(Path("runs/np"))
        >>> hit = cache.find(key, notes)   # the fit of exactly these data, or None
        >>> cache.save(CachedFit(key, [gp.state_dict() for gp in model.models]))
    """

    def __init__(self, campaign_dir: str | Path) -> None:
        self.folder = Path(campaign_dir) / CACHE_DIR

    def find(self, key: str, notes: list[str]) -> CachedFit | None:
        """The entry with `key`, or None; unreadable files are noted and removed."""
        for path in self._entries():
            try:
                entry = _read(path)
            except Exception as err:  # noqa: BLE001 - any damage means: do not trust it
                notes.append(f"the model cache {path} could not be read ({type(err).__name__}); refitting.")
                path.unlink(missing_ok=True)
                continue
            if entry.key == key:
                return entry
        return None

    def save(self, entry: CachedFit) -> None:
        """Write `entry` atomically and drop all but the newest `KEEP` entries; a read-only folder is skipped."""
        try:
            self.folder.mkdir(exist_ok=True)
            path = self.folder / f"{entry.key[:32]}.pt"
            scratch = path.with_suffix(".tmp")
            torch.save({"key": entry.key, "states": entry.states}, scratch)
            os.replace(scratch, path)
            for old in self._entries()[KEEP:]:
                old.unlink(missing_ok=True)
        except OSError:
            pass  # a read-only campaign still proposes, it just refits next time

    def _entries(self) -> list[Path]:
        """Cache files, newest first."""
        if not self.folder.is_dir():
            return []
        return sorted(self.folder.glob("*.pt"), key=lambda p: p.stat().st_mtime_ns, reverse=True)


def _read(path: Path) -> CachedFit:
    raw = torch.load(path, weights_only=True)
    states = raw["states"]
    if not isinstance(raw["key"], str) or not isinstance(states, list):
        raise ValueError("not a model cache entry")
    return CachedFit(raw["key"], states)
