"""Weighted training losses: per-row weights for regression, class weights and focal loss for binary labels."""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.utils.class_weight import compute_class_weight
from torch import Tensor


def _weighted_mean(losses: Tensor, weights: Tensor | None, mask: Tensor | None = None) -> Tensor:
    """`sum(w * loss) / sum(w)` over the entries where `mask` holds (rows broadcast over outcomes)."""
    if weights is None:
        w = torch.ones_like(losses)
    elif weights.shape == losses.shape:
        w = weights.to(losses)
    else:
        w = weights.to(losses).reshape(-1, *[1] * (losses.dim() - 1)).expand_as(losses)
    if mask is not None:
        w = w * mask
    return (w * losses).sum() / w.sum().clamp_min(torch.finfo(losses.dtype).tiny)


def gaussian_nll(mean: Tensor, var: Tensor, target: Tensor, weights: Tensor | None = None, beta: float = 0.0) -> Tensor:
    """Weighted Gaussian negative log-likelihood, ignoring missing (NaN) targets.

    Each entry's loss is `torch.nn.GaussianNLLLoss(full=True)`'s
    `0.5 * (log(2 pi var) + (target - mean)^2 / var)`, times `var.detach() ** beta` (the
    beta-NLL of Seitzer et al. 2022: with `beta = 0` the plain NLL, whose gradient on the mean
    shrinks where the predicted variance is large, so a network can settle on "this region is
    noisy" instead of fitting it; `beta = 0.5` balances the two). With `beta > 0` the value is
    not a proper score (at the variance its gradient drives to, it rises again as the residuals
    fall below about 0.09 standard deviations): train on it, score with `gaussian_crps`. The result is
    `sum(w * loss) / sum(w)` over the entries whose target is not NaN.

    Args:
        mean: A `n x m` tensor of predicted means.
        var: A `n x m` tensor of predicted variances (positive).
        target: A `n x m` tensor of targets; NaN marks a missing measurement.
        weights: Optional `n` tensor of non-negative per-row weights (trust, importance).
        beta: Exponent of the detached variance factor (0: plain NLL).

    Returns:
        A scalar tensor.

    Example:
        >>> gaussian_nll(torch.zeros(4, 1), torch.ones(4, 1), torch.randn(4, 1))
    """
    mask = ~torch.isnan(target)
    losses = torch.nn.GaussianNLLLoss(full=True, reduction="none", eps=1e-12)(
        mean, torch.where(mask, target, mean.detach()), var
    )
    if beta:
        losses = losses * var.detach() ** beta
    return _weighted_mean(losses, weights, mask)


def gaussian_crps(mean: Tensor, var: Tensor, target: Tensor, weights: Tensor | None = None) -> Tensor:
    """Weighted continuous ranked probability score of Gaussian predictions, ignoring missing (NaN) targets.

    The CRPS of `N(mean, var)` at `target` is, with `sd = var ** 0.5` and `z = (target - mean) / sd`,
    `sd * (z * (2 Phi(z) - 1) + 2 phi(z) - 1 / sqrt(pi))` (Gneiting and Raftery 2007): a proper
    score in the outcome's units that rewards a narrower distribution only when it stays
    calibrated, and goes to 0 as predictions become exact (the mean absolute error for `var -> 0`).
    Unlike the NLL it grows only linearly in a row's error (a few confidently wrong rows do not
    dominate it), and unlike the beta-NLL's value it keeps falling as the fit improves: the
    beta-NLL's value, `var^beta * NLL`, rises again once the residuals fall below about 0.09
    standard deviations, which made it a misleading early-stopping score on precise data.
    `NeuralEnsemble` stops early on it (`TrainingOptions.stop_on="score"`).

    Args:
        mean: A `n x m` tensor of predicted means.
        var: A `n x m` tensor of predicted variances (positive).
        target: A `n x m` tensor of targets; NaN marks a missing measurement.
        weights: Optional `n` tensor of non-negative per-row weights.

    Returns:
        A scalar tensor, `sum(w * crps) / sum(w)`.

    Example:
        >>> gaussian_crps(torch.zeros(4, 1), torch.ones(4, 1), torch.randn(4, 1))
    """
    mask = ~torch.isnan(target)
    sd = var.clamp_min(1e-12).sqrt()
    z = (torch.where(mask, target, mean.detach()) - mean) / sd
    normal = torch.distributions.Normal(0.0, 1.0)
    pdf, cdf = normal.log_prob(z).exp(), normal.cdf(z)
    losses = sd * (z * (2 * cdf - 1) + 2 * pdf - 1 / math.sqrt(math.pi))
    return _weighted_mean(losses, weights, mask)


def weighted_mse(pred: Tensor, target: Tensor, weights: Tensor | None = None) -> Tensor:
    """Weighted mean squared error, ignoring missing (NaN) targets.

    Args:
        pred: A `n x m` tensor of predictions.
        target: A `n x m` tensor of targets; NaN marks a missing measurement.
        weights: Optional `n` tensor of non-negative per-row weights.

    Returns:
        A scalar tensor, `sum(w * (pred - target)^2) / sum(w)`.
    """
    mask = ~torch.isnan(target)
    losses = (pred - torch.where(mask, target, pred.detach())).square()
    return _weighted_mean(losses, weights, mask)


def balanced_class_weights(labels: Tensor | np.ndarray) -> Tensor:
    """Weights `(w_negative, w_positive)` in scikit-learn's "balanced" meaning: `n / (2 * n_class)`.

    Computed by `sklearn.utils.class_weight.compute_class_weight("balanced")`. A class that does
    not occur gets weight 1.

    Args:
        labels: A `n` array of 0/1 labels.

    Returns:
        A tensor of two weights, for labels 0 and 1.

    Example:
        >>> balanced_class_weights(torch.tensor([0, 0, 0, 1]))
        tensor([0.6667, 2.0000], dtype=torch.float64)
    """
    y = np.asarray(labels, dtype=int).ravel()
    present = np.unique(y)
    if not set(present) <= {0, 1}:
        raise ValueError(
            f"`labels` must hold only 0 and 1. Got the values {present.tolist()} instead. Encode the classes as 0/1."
        )
    weights = np.ones(2)
    weights[present] = compute_class_weight("balanced", classes=present, y=y)
    return torch.as_tensor(weights, dtype=torch.double)


def binary_cross_entropy(
    logits: Tensor,
    target: Tensor,
    class_weight: Tensor | None = None,
    weights: Tensor | None = None,
    gamma: float = 0.0,
    alpha: float | None = None,
) -> Tensor:
    """Class-weighted binary cross-entropy on logits, with an optional focal term.

    The loss of one entry is `c[y] * a[y] * (1 - p_t)^gamma * BCE(logit, y)` where `p_t` is the
    predicted probability of the true class, `c` the class weights and `a = (1 - alpha, alpha)`
    the focal loss's class balance (Lin et al. 2017, *Focal loss for dense object detection*).
    `gamma = 0` and `alpha = None` give plain (class-weighted) cross-entropy; `gamma > 0` shrinks
    the loss of examples that are already classified well. The result is `sum(w * loss) / sum(w)`
    with `w = c[y] * weights` (missing NaN targets are skipped), so with balanced class weights
    it equals `sklearn.metrics.log_loss(..., sample_weight=compute_sample_weight("balanced", y))`.

    Args:
        logits: A `n` or `n x m` tensor of logits.
        target: Labels (0/1, NaN for missing), same shape as `logits`.
        class_weight: Two weights for labels 0 and 1, e.g. `balanced_class_weights(y)`;
            None weighs both classes 1.
        weights: Optional `n` tensor of per-row weights.
        gamma: Focal-loss focusing parameter (>= 0).
        alpha: Focal-loss weight of the positive class in (0, 1); None for none.

    Returns:
        A scalar tensor.

    Raises:
        ValueError: If `gamma` is negative or `alpha` is outside (0, 1).

    Example:
        >>> y = torch.tensor([0.0, 0.0, 0.0, 1.0])
        >>> binary_cross_entropy(torch.zeros(4), y, balanced_class_weights(y), gamma=2.0)
    """
    if gamma < 0:
        raise ValueError(f"`gamma` must be >= 0. Got {gamma!r} instead. Use 0 for plain cross-entropy.")
    if alpha is not None and not 0 < alpha < 1:
        raise ValueError(f"`alpha` must lie in (0, 1). Got {alpha!r} instead. Use None to leave it out.")
    mask = ~torch.isnan(target)
    y = torch.where(mask, target, torch.zeros_like(target))
    losses = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")
    if gamma > 0:
        p_true = torch.exp(-losses)  # BCE = -log(p_t)
        losses = (1 - p_true).pow(gamma) * losses
    if alpha is not None:
        losses = torch.where(y > 0.5, alpha, 1 - alpha) * losses
    if class_weight is not None:
        cw = class_weight.to(losses)
        row = torch.where(y > 0.5, cw[1], cw[0])
        weights = row if weights is None else row * weights.to(losses).reshape(-1, *[1] * (losses.dim() - 1))
    return _weighted_mean(losses, weights, mask)
