"""The shared simulator helpers of `data.core` with a sequence parameter."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data.core import parameter_arrays, sample_designs

CONFIG = {"parameters": [{"name": "pep", "type": "sequence", "alphabet": "ACDE", "length": 5}], "constraints": []}


def test_sequences_are_sampled_and_checked():
    designs = sample_designs(CONFIG, 6, np.random.default_rng(0))
    assert all(len(s) == 5 and set(s) <= set("ACDE") for s in designs["pep"])
    assert list(parameter_arrays(designs, CONFIG)["pep"]) == list(designs["pep"])
    with pytest.raises(ValueError, match=r"`pep` must be 5 letters of 'ACDE'. Got 'ACDEX' \(row 0\)"):
        parameter_arrays(pd.DataFrame({"pep": ["ACDEX"]}), CONFIG)
