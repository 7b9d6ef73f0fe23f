"""Benchmarks: Valley side by side with the established tools, and the baselines and problems they need.

`safe` (simulated safe campaigns against random search, BoTorch and Ax, with `baselines`),
`speed` and `ensemble` (seconds per proposal, peak memory, training time), `surrogates`
(weighted losses, physics terms, calibration), `inverse` and `published` (inverse design against
random search, DE, a genetic algorithm (`genetic`), the neural adjoint and k-NN lookup
(`inverse_baselines`) on the bearing, the sequences, the arm (`robot_arm`) and the sine wave
(`sine_wave`)). `valley benchmark ...` runs them; nothing in the product imports this package.
"""
