"""Tests for system 5: the neo-Hookean bar's reference solution and its potential energy."""

from __future__ import annotations

import numpy as np
import torch

from data import hyperelastic as bar
from surrogates.physics import make_grad


def test_reference_satisfies_equilibrium_and_boundary_conditions():
    x = np.linspace(0, 1, 2001)
    F = bar.reference_stretch(x)
    P = bar.piola(F)
    dPdx = np.gradient(P, x)
    assert np.abs(dPdx + bar.body_force(x))[5:-5].max() < 1e-2  # dP/dx + b = 0
    assert abs(P[-1] - bar.TRACTION) < 1e-6 and bar.reference_displacement(np.array([0.0]))[0] == 0.0
    u = bar.reference_displacement(x)
    assert np.allclose(np.gradient(u, x)[5:-5], F[5:-5] - 1, atol=1e-3)
    assert F.min() > 1.0 and F.max() > 1.5  # stretched, with large strains


def test_reference_minimizes_the_potential_energy():
    x = np.linspace(0, 1, 4001)
    u = bar.reference_displacement(x)
    best = bar.potential_energy(u, x)
    for eps in (0.02, -0.02):
        for bump in (np.sin(np.pi * x / 2), x * (1 - x), np.sin(3 * np.pi * x)):
            assert bar.potential_energy(u + eps * bump, x) > best


def test_energy_density_matches_the_integral():
    X = torch.linspace(0, 1, 4001, dtype=torch.double).unsqueeze(-1).requires_grad_(True)
    Y = 0.3 * X**2 + 0.1 * X  # any field with u(0) = 0
    density = bar.potential_energy_density(X, Y, make_grad(X))
    x = X.detach().numpy().ravel()
    expected = bar.potential_energy(0.3 * x**2 + 0.1 * x, x)
    assert abs(float(np.trapezoid(density.detach().numpy(), x)) - expected) < 1e-6


def test_measurements_are_noisy_samples_of_the_reference():
    df = bar.sample_measurements(200, seed=0, noise_sd=0.01)
    resid = df["u"] - bar.reference_displacement(df["x"].to_numpy())
    assert 0.007 < resid.std() < 0.013 and df["x"].between(0, 1).all()
