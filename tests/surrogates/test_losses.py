"""Tests for the weighted losses: row weights, sklearn-balanced class weights, focal loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import log_loss
from sklearn.utils.class_weight import compute_class_weight, compute_sample_weight

from surrogates import balanced_class_weights, binary_cross_entropy, gaussian_nll, weighted_mse
from surrogates.losses import gaussian_crps


def test_balanced_class_weights_are_sklearns():
    y = np.array([0] * 47 + [1] * 3)
    expected = compute_class_weight("balanced", classes=np.array([0, 1]), y=y)
    assert torch.allclose(balanced_class_weights(y), torch.as_tensor(expected, dtype=torch.double))
    assert balanced_class_weights(np.zeros(5)).tolist() == [1.0, 1.0]  # absent class: weight 1
    with pytest.raises(ValueError, match="only 0 and 1"):
        balanced_class_weights(np.array([0, 2]))


def test_class_weighted_bce_equals_sklearn_weighted_log_loss():
    g = torch.Generator().manual_seed(0)
    y = (torch.rand(60, generator=g) < 0.1).double()
    logits = torch.randn(60, generator=g, dtype=torch.double)
    loss = binary_cross_entropy(logits, y, balanced_class_weights(y.numpy()))
    p = torch.sigmoid(logits).numpy()
    expected = log_loss(y.numpy(), p, sample_weight=compute_sample_weight("balanced", y.numpy()))
    assert float(loss) == pytest.approx(expected, rel=1e-9)
    # weighting makes a missed positive cost more than in the unweighted loss
    missed = torch.tensor([-3.0, -3.0], dtype=torch.double)
    labels = torch.tensor([1.0, 0.0], dtype=torch.double)
    cw = torch.tensor([0.5, 5.0], dtype=torch.double)
    assert binary_cross_entropy(missed, labels, cw) > binary_cross_entropy(missed, labels)


def test_focal_loss_down_weights_easy_examples():
    logits = torch.tensor([4.0, 0.2], dtype=torch.double)  # one easy, one hard positive
    y = torch.ones(2, dtype=torch.double)
    plain = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")
    focal = torch.stack([binary_cross_entropy(logits[i : i + 1], y[i : i + 1], gamma=2.0) for i in range(2)])
    ratio = focal / plain
    assert ratio[0] < 1e-3 and ratio[1] > 0.2  # the easy one almost vanishes, the hard one stays
    assert float(binary_cross_entropy(logits, y, gamma=0.0)) == pytest.approx(float(plain.mean()))
    with pytest.raises(ValueError, match="gamma"):
        binary_cross_entropy(logits, y, gamma=-1.0)


def test_row_weights_and_missing_targets():
    mean = torch.zeros(3, 1)
    target = torch.tensor([[1.0], [3.0], [float("nan")]])
    assert float(weighted_mse(mean, target)) == pytest.approx(5.0)
    assert float(weighted_mse(mean, target, torch.tensor([1.0, 0.0, 1.0]))) == pytest.approx(1.0)
    var = torch.ones(3, 1)
    nll = gaussian_nll(mean, var, target, torch.tensor([3.0, 1.0, 1.0]))
    expected = 0.5 * np.log(2 * np.pi) + (3 * 0.5 * 1 + 1 * 0.5 * 9) / 4
    assert float(nll) == pytest.approx(expected, rel=1e-6)


def test_beta_nll_weights_each_entry_by_its_detached_variance():
    mean = torch.zeros(2, 1, requires_grad=True)
    var = torch.tensor([[4.0], [0.25]], requires_grad=True)
    target = torch.tensor([[2.0], [1.0]])
    plain = 0.5 * (torch.log(2 * np.pi * var) + (target - mean) ** 2 / var)
    beta = gaussian_nll(mean, var, target, beta=0.5)
    assert float(beta.detach()) == pytest.approx(float((plain * var.sqrt()).mean().detach()), rel=1e-6)
    beta.backward()
    # the factor is a constant: the gradient is the plain NLL's, scaled entry by entry
    expected_grad = var.detach().sqrt() * (var.detach() - (target - mean.detach()) ** 2) / (2 * var.detach() ** 2) / 2
    assert torch.allclose(var.grad, expected_grad)


def test_gaussian_crps_closed_form_limits_and_missing_targets():
    from scipy.stats import norm

    mean, var, y = torch.tensor([[0.0], [1.0]]), torch.tensor([[1.0], [4.0]]), torch.tensor([[0.5], [-1.0]])
    z = ((y - mean) / var.sqrt()).numpy()
    expected = var.sqrt().numpy() * (z * (2 * norm.cdf(z) - 1) + 2 * norm.pdf(z) - 1 / np.sqrt(np.pi))
    assert float(gaussian_crps(mean, var, y)) == pytest.approx(expected.mean(), rel=1e-5)
    # a vanishing variance leaves the mean absolute error; NaN targets are skipped; weights weigh rows
    assert float(gaussian_crps(mean, torch.full_like(var, 1e-10), y)) == pytest.approx(1.25, rel=1e-4)
    assert float(gaussian_crps(mean, var, torch.tensor([[0.5], [float("nan")]]))) == pytest.approx(expected[0, 0])
    w = torch.tensor([1.0, 0.0])
    assert float(gaussian_crps(mean, var, y, w)) == pytest.approx(expected[0, 0], rel=1e-5)


def test_crps_keeps_falling_as_the_fit_improves_where_the_beta_nll_value_rises():
    # residuals r with the variance the beta-NLL's gradient drives to (var = r^2)
    values = {"crps": [], "beta_nll": []}
    for r in (0.3, 0.1, 0.03, 0.01):
        mean, var, y = torch.zeros(1, 1), torch.full((1, 1), r**2), torch.full((1, 1), r)
        values["crps"].append(float(gaussian_crps(mean, var, y)))
        values["beta_nll"].append(float(gaussian_nll(mean, var, y, beta=0.5)))
    assert np.all(np.diff(values["crps"]) < 0)
    assert np.all(np.diff(values["beta_nll"][1:]) > 0)  # a better fit looks worse below r ~ 0.09
