"""Tests for the deep ensembles: determinism, variance decomposition, botorch use, sequences, physics, classes."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from botorch.acquisition import qUpperConfidenceBound
from botorch.acquisition.logei import qLogNoisyExpectedImprovement
from botorch.acquisition.objective import GenericMCObjective

from surrogates import (
    NetworkSpec,
    NeuralClassifierEnsemble,
    NeuralEnsemble,
    Surrogate,
    TrainingOptions,
    monotonic,
    one_hot,
    tune_physics_weight,
)

TINY = NetworkSpec(hidden=(16,), channels=4, kernel_size=3)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def data(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, 2, generator=g, dtype=torch.double)
    Y = torch.stack([torch.sin(3 * X[:, 0]) + X[:, 1], X[:, 0] * X[:, 1]], -1)
    return X, Y + 0.05 * torch.randn(n, 2, generator=g, dtype=torch.double)


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(1)
    X, Y = data(60)
    return NeuralEnsemble(3, TINY, TrainingOptions(epochs=60, patience=20)).fit(X, Y)


def test_same_seed_same_predictions_and_global_rng_untouched(model):
    X, Y = data(60)
    state = torch.random.get_rng_state()
    again = NeuralEnsemble(3, TINY, TrainingOptions(epochs=60, patience=20)).fit(X, Y)
    assert torch.equal(torch.random.get_rng_state(), state)
    X_new = torch.rand(7, 2, dtype=torch.double)
    with torch.no_grad():
        assert torch.equal(model.posterior(X_new).mean, again.posterior(X_new).mean)
        other = NeuralEnsemble(3, TINY, TrainingOptions(epochs=60, patience=20), seed=1).fit(X, Y)
        assert not torch.equal(model.posterior(X_new).mean, other.posterior(X_new).mean)


def test_posterior_shapes_and_variance_decomposition(model):
    assert isinstance(model, Surrogate) and model.num_outputs == 2
    X_new = torch.rand(4, 3, 2, dtype=torch.double)
    with torch.no_grad():
        post, noisy = model.posterior(X_new), model.posterior(X_new, observation_noise=True)
        means, variances = model._member_moments(X_new)
    assert post.mean.shape == (4, 3, 2) and post.variance.shape == (4, 3, 2)
    assert torch.allclose(post.mean, means.mean(0))
    assert torch.allclose(post.variance, means.var(0, unbiased=False).clamp_min(1e-12))
    assert torch.allclose(noisy.variance, means.var(0, unbiased=False) + variances.mean(0))
    assert torch.allclose(model.predict(X_new)[1], noisy.variance)
    assert post.rsample(torch.Size([5])).shape == (5, 4, 3, 2)
    assert model.posterior(X_new, output_indices=[1]).mean.shape == (4, 3, 1)


def test_fit_quality_history_and_early_stopping(model):
    X, Y = data(200, seed=5)
    with torch.no_grad():
        mean = model.posterior(X).mean
    assert float((mean - Y).square().mean().sqrt()) < 0.25  # outcomes span about 2
    h = model.history_
    assert set(h["member"]) == {0, 1, 2} and {"train_loss", "val_loss", "lr"} <= set(h.columns)
    assert h.groupby("member")["train_loss"].apply(lambda s: s.iloc[-5:].mean() < s.iloc[:5].mean()).all()
    for k, best in enumerate(model.best_epochs_):  # restored weights are those of the best validation epoch
        rows = h[h["member"] == k]
        assert best == int(rows.loc[rows["val_loss"].idxmin(), "epoch"])


def test_botorch_acquisition_works_and_gradients_reach_x(model):
    X, _ = data(60)
    acq = qLogNoisyExpectedImprovement(
        model,
        X_baseline=X[:10],
        objective=GenericMCObjective(lambda Z, X=None: Z[..., 0]),
        constraints=[lambda Z: Z[..., 1] - 0.5],  # outcome 1 <= 0.5, as a safety limit would be
    )
    X_q = torch.rand(3, 2, 2, dtype=torch.double, requires_grad=True)
    value = acq(X_q)
    value.sum().backward()
    assert value.shape == (3,) and torch.isfinite(value).all()
    assert X_q.grad is not None and X_q.grad.abs().sum() > 0
    single = NeuralEnsemble(2, TINY, TrainingOptions(epochs=5)).fit(X, X[:, 0])
    ucb = qUpperConfidenceBound(single, beta=4.0)
    assert torch.isfinite(ucb(torch.rand(4, 2, 2, dtype=torch.double))).all()


def test_one_hot_and_sequence_cnn():
    assert one_hot(["AC", "CA"], "AC").tolist() == [[1, 0, 0, 1], [0, 1, 1, 0]]
    with pytest.raises(ValueError, match="same length"):
        one_hot(["A", "AC"], "AC")
    g = torch.Generator().manual_seed(0)
    seqs = ["".join("ACGT"[i] for i in torch.randint(0, 4, (8,), generator=g)) for _ in range(80)]
    X = torch.cat([torch.rand(80, 1, dtype=torch.double, generator=g), one_hot(seqs, "ACGT")], 1)
    y = torch.tensor([s.count("G") for s in seqs], dtype=torch.double) + X[:, 0]  # position-invariant
    model = NeuralEnsemble(
        2,
        NetworkSpec(hidden=(16,), channels=8, kernel_size=3),
        TrainingOptions(epochs=80, patience=80),
        sequence_blocks=[(1, 8, 4)],
    ).fit(X, y)
    with torch.no_grad():
        mean = model.posterior(X).mean.squeeze(-1)
    assert float(torch.corrcoef(torch.stack([mean, y]))[0, 1]) > 0.8
    with pytest.raises(ValueError, match="must fit"):
        NeuralEnsemble(1, sequence_blocks=[(1, 9, 4)]).fit(X, y)


def test_sample_weights_pull_the_fit_toward_trusted_rows():
    X = torch.rand(40, 1, dtype=torch.double, generator=torch.Generator().manual_seed(1))
    y = torch.where(X[:, 0] < 0.5, 0.0, 1.0).double()
    y_wrong = 1 - y
    both_X, both_y = torch.cat([X, X]), torch.cat([y, y_wrong])
    w = torch.cat([torch.ones(40), torch.full((40,), 0.05)]).double()
    opts = TrainingOptions(epochs=40, validation_fraction=0.0)
    with torch.no_grad():
        weighted = NeuralEnsemble(1, TINY, opts).fit(both_X, both_y, weights=w).posterior(X).mean.squeeze(-1)
    assert float(((weighted > 0.5).double() == y).double().mean()) > 0.9


def test_physics_term_is_logged_and_enforced():
    X = torch.linspace(0, 1, 8, dtype=torch.double).unsqueeze(-1)
    y = torch.sin(3 * X[:, 0])  # falls after x = 0.52, against the law
    opts = TrainingOptions(epochs=60, validation_fraction=0.0, n_collocation=32)
    term = monotonic(0, weight=50.0)
    model = NeuralEnsemble(1, TINY, opts, physics=[term]).fit(X, y, bounds=torch.tensor([[0.0], [1.0]]))
    free = NeuralEnsemble(1, TINY, opts).fit(X, y)
    column = f"physics:{term.name}"
    assert column in model.history_ and model.history_[column].notna().all()
    grid = torch.linspace(0, 1, 50, dtype=torch.double).unsqueeze(-1)
    with torch.no_grad():
        falls = model.posterior(grid).mean.squeeze(-1).diff().clamp_max(0).sum()
        falls_free = free.posterior(grid).mean.squeeze(-1).diff().clamp_max(0).sum()
    assert float(falls_free) < -0.3 and float(falls) > 0.2 * float(falls_free)  # the law cuts the drop by > 5x


def test_tune_physics_weight_returns_the_grid_table():
    X = torch.linspace(0, 1, 10, dtype=torch.double).unsqueeze(-1)
    opts = TrainingOptions(epochs=10, validation_fraction=0.0, n_collocation=16)
    best, table_df = tune_physics_weight(
        monotonic(0), lambda t: NeuralEnsemble(1, TINY, opts, physics=[t]).fit(X, X[:, 0]), X, X, grid=[0.0, 1.0]
    )
    assert list(table_df["weight"]) == [0.0, 1.0] and best in (0.0, 1.0)
    assert table_df.loc[table_df["weight"] == best, "val_nll"].item() == table_df["val_nll"].min()


def test_classifier_class_weights_find_rare_positives():
    g = torch.Generator().manual_seed(0)
    X = torch.rand(300, 2, generator=g, dtype=torch.double)
    y = ((X[:, 0] > 0.85) & (X[:, 1] > 0.6)).double()  # about 6 % positives
    opts = TrainingOptions(epochs=30, validation_fraction=0.2, patience=30)
    weighted = NeuralClassifierEnsemble(2, TINY, opts).fit(X, y)
    assert torch.allclose(
        weighted.class_weight_.double(),
        torch.tensor([300 / (2 * (300 - y.sum())), 300 / (2 * y.sum())]).double(),
        rtol=1e-5,
    )
    unweighted = NeuralClassifierEnsemble(2, TINY, opts, class_weight=None).fit(X, y)
    p_w, p_u = weighted.predict_proba(X), unweighted.predict_proba(X)
    assert p_w.shape == (300,) and ((p_w >= 0) & (p_w <= 1)).all()
    assert float(p_w[y == 1].mean()) > float(p_u[y == 1].mean())  # positives are no longer drowned out
    with pytest.raises(RuntimeError, match="not fitted"):
        NeuralClassifierEnsemble().predict_proba(X)


def test_pairwise_features_learn_a_contact_energy_and_shared_encoder_shares():
    from surrogates.networks import PairFeatures, SurrogateNet

    g = torch.Generator().manual_seed(0)
    L, A = 6, 4
    codes = torch.randint(0, A, (400, L), generator=g)
    P = torch.nn.functional.one_hot(codes, A).double()
    W = torch.tensor([[1.0, -1.0, 0.0, 0.5], [-1.0, 1.0, 0.0, 0.0], [0.0, 0.0, -1.0, 0.0], [0.5, 0.0, 0.0, 0.0]])
    contacts = torch.zeros(L, L)
    contacts[0, 3] = contacts[3, 0] = contacts[1, 5] = contacts[5, 1] = 1.0
    y = torch.einsum("nia,ab,njb,ij->n", P, W.double(), P, contacts.double())  # a contact energy
    spec = NetworkSpec(hidden=(8,), channels=2, kernel_size=3, pair_channels=2)
    model = NeuralEnsemble(1, spec, TrainingOptions(epochs=150, patience=40), sequence_blocks=[(0, L, A)])
    model.fit(P.reshape(400, -1)[:300], y[:300])
    with torch.no_grad():
        mean = model.posterior(P.reshape(400, -1)[300:]).mean.squeeze(-1)
    assert float(torch.corrcoef(torch.stack([mean, y[300:]]))[0, 1]) > 0.9
    features = PairFeatures(L, A, 3)
    features.reset_parameters(torch.Generator().manual_seed(0))
    relaxed = torch.softmax(torch.randn(5, L, A), -1).requires_grad_(True)
    features(relaxed).sum().backward()
    assert features(relaxed).shape == (5, 3) and relaxed.grad is not None
    net = SurrogateNet(
        2 * L * A, 1, [(0, L, A), (L * A, L, A)], NetworkSpec(shared_encoder=True), *[torch.zeros(48)] * 2
    )
    assert net.cnns[0] is net.cnns[1]


def test_classifier_early_stopping_on_average_precision():
    g = torch.Generator().manual_seed(3)
    X = torch.rand(300, 2, dtype=torch.double, generator=g)
    y = ((X[:, 0] > 0.85) & (X[:, 1] > 0.5)).double()
    opts = TrainingOptions(epochs=20, patience=5, stop_on="average_precision")
    clf = NeuralClassifierEnsemble(2, TINY, opts).fit(X, y)
    assert (clf.history_["val_loss"] <= 0).all() and len(clf.best_epochs_) == 2
    with pytest.raises(ValueError, match="stop_on"):
        TrainingOptions(stop_on="accuracy")


@pytest.mark.parametrize(
    "spec, n_blocks",
    [
        (NetworkSpec(hidden=(8, 8), channels=3, kernel_size=3, shared_encoder=True), 2),
        (NetworkSpec(hidden=(8,), channels=3, kernel_size=3, pair_channels=2, pair_rank=2), 1),
        (NetworkSpec(hidden=(8,), channels=3, kernel_size=3, pair_channels=2), 2),  # the skip layer sees both blocks
    ],
)
def test_ensemble_net_computes_what_each_member_computes(spec, n_blocks):
    from surrogates.networks import EnsembleNet, SurrogateNet

    L, A = 6, 4
    blocks = [(1 + b * L * A, L, A) for b in range(n_blocks)]
    d = 1 + n_blocks * L * A
    shift, scale = torch.rand(d), torch.rand(d) + 0.5
    nets = []
    for k in range(3):
        net = SurrogateNet(d, 2, blocks, spec, shift, scale)
        net.reset_parameters(torch.Generator().manual_seed(k))
        nets.append(net.eval())
    grouped = EnsembleNet(nets).eval()
    X = torch.rand(5, d, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        expected = torch.stack([net(X) for net in nets])
        assert torch.allclose(grouped(X), expected, atol=1e-5)  # rows shared by all members
        assert torch.allclose(grouped(X.expand(3, 5, d)), expected, atol=1e-5)  # one batch per member
        assert torch.allclose(grouped.member(1)(X), expected[1], atol=1e-5)
        assert torch.allclose(grouped(grouped.normalize(X), normalized=True), expected, atol=1e-5)
        single = grouped.select(2)
        assert single.n_members == 1 and torch.allclose(single(X)[0], expected[2], atol=1e-5)
    assert len(grouped.cnns) == (1 if spec.shared_encoder else n_blocks)  # a shared encoder stays shared


@pytest.mark.parametrize("kind", ["regression", "classifier"])
def test_batched_members_match_members_trained_one_after_another(kind):

    g = torch.Generator().manual_seed(4)
    X = torch.rand(80, 3, dtype=torch.double, generator=g)
    if kind == "regression":
        y = torch.sin(4 * X[:, 0]) + X[:, 1] + 0.3 * torch.randn(80, generator=g, dtype=torch.double)
        opts = TrainingOptions(epochs=60, patience=5, lr=3e-2, clip_norm=0.5)
        make = lambda o: NeuralEnsemble(3, TINY, o, physics=[monotonic(1, weight=0.5)], seed=2)  # noqa: E731
    else:
        y = (X[:, 0] + 0.3 * torch.randn(80, generator=g, dtype=torch.double) > 0.8).double()
        opts = TrainingOptions(epochs=30, patience=3, stop_on="average_precision")
        make = lambda o: NeuralClassifierEnsemble(3, TINY, o, seed=2)  # noqa: E731
    w = torch.rand(80, dtype=torch.double, generator=g) + 0.5
    batched = make(opts).fit(X, y, weights=w)
    alone = make(dataclasses.replace(opts, batched=False)).fit(X, y, weights=w)
    X_new = torch.rand(30, 3, dtype=torch.double, generator=g)
    with torch.no_grad():
        if kind == "regression":
            for a, b in zip(batched._member_moments(X_new), alone._member_moments(X_new), strict=True):
                assert torch.allclose(a, b, atol=1e-4)
        else:
            assert torch.allclose(batched.predict_proba(X_new), alone.predict_proba(X_new), atol=1e-4)
    assert batched.best_epochs_ == alone.best_epochs_
    assert len(set(batched.history_.groupby("member").size())) > 1  # the members stopped at different epochs
    h_b, h_a = batched.history_.sort_values(["member", "epoch"]).reset_index(drop=True), alone.history_
    assert list(h_b.columns) == list(h_a.columns) and h_b[["member", "epoch"]].equals(h_a[["member", "epoch"]])
    assert ((h_b["train_loss"] - h_a["train_loss"]).abs() < 1e-4).all()


def test_early_stopping_stops_members_independently():
    X, Y = data(80, seed=3)
    opts = TrainingOptions(epochs=200, patience=5, lr=1e-2, lr_schedule="constant")
    model = NeuralEnsemble(4, TINY, opts).fit(X, Y)
    h = model.history_
    lengths = h.groupby("member").size()
    assert lengths.nunique() > 1 and (lengths < 200).all()
    for k, best in enumerate(model.best_epochs_):  # each stopped `patience` epochs after its own best
        rows = h[h["member"] == k]
        assert len(rows) == best + 5 + 1 and best == int(rows.loc[rows["val_loss"].idxmin(), "epoch"])


def test_step_budget_scales_batch_epochs_and_patience_with_n():
    from surrogates.ensemble_training import schedule

    default = TrainingOptions()
    assert schedule(48, default) == (64, 300, 30)  # the lab case: training as before the budget
    assert schedule(640, default) == (64, 300, 30)
    assert schedule(1600, default) == (64, 240, 30)  # 25 steps per epoch; patience at least a quarter
    assert schedule(16000, default) == (160, 60, 15)
    assert schedule(10**6, default) == (1024, 7, 2)
    assert schedule(16000, TrainingOptions(batch_size=64, step_budget=None)) == (64, 300, 30)
    assert schedule(16000, TrainingOptions(batch_size=1000, step_budget=160)) == (1000, 10, 3)
    assert schedule(16000, TrainingOptions(patience=5)) == (160, 60, 5)  # never above `patience`
    assert schedule(16000, TrainingOptions(patience_share=0.125)) == (160, 60, 8)  # a classifier's default
    assert schedule(640, TrainingOptions(patience_share=0.125)) == (64, 300, 30)
    X, Y = data(500)
    model = NeuralEnsemble(2, TINY, TrainingOptions(step_budget=35, validation_fraction=0.0)).fit(X, Y)
    assert model.history_.groupby("member")["epoch"].max().tolist() == [4, 4]  # 8 steps per epoch: 5 epochs


def test_early_stopping_on_the_crps_keeps_fitting_noise_free_data():
    # The beta-NLL's value rises again once the residuals are small, so stopping on it ("loss")
    # stops members that are still improving; the CRPS ("score", the default) does not.
    g = torch.Generator().manual_seed(0)
    X, X_test = torch.rand(400, 2, generator=g, dtype=torch.double), torch.rand(500, 2, generator=g, dtype=torch.double)

    def f(X: torch.Tensor) -> torch.Tensor:
        return torch.stack([torch.sin(3 * X[:, 0]) + X[:, 1], X[:, 0] * X[:, 1]], -1)

    rmse, best = {}, {}
    for stop_on in ("loss", "score"):
        spec, opts = NetworkSpec(hidden=(32, 32)), TrainingOptions(epochs=100, stop_on=stop_on)
        model = NeuralEnsemble(2, spec, opts).fit(X, f(X))
        with torch.no_grad():
            rmse[stop_on] = float((model.posterior(X_test).mean - f(X_test)).square().mean().sqrt())
        best[stop_on] = model.best_epochs_
    assert TrainingOptions().stop_on == "score"
    assert min(best["score"]) >= 90 and max(best["loss"]) < 90
    assert rmse["score"] < 0.5 * rmse["loss"] and rmse["score"] < 5e-3


def test_cosine_schedule_decays_the_step_size_over_the_epochs():
    X, Y = data(100)
    opts = TrainingOptions(epochs=20, lr=1e-2, validation_fraction=0.0)
    lrs = NeuralEnsemble(1, TINY, opts).fit(X, Y).history_["lr"].to_numpy()
    assert lrs[0] < opts.lr and (lrs[1:] <= lrs[:-1]).all() and lrs[-1] == pytest.approx(opts.lr / 100)
    constant = NeuralEnsemble(1, TINY, TrainingOptions(epochs=5, validation_fraction=0.0, lr_schedule="constant"))
    assert (constant.fit(X, Y).history_["lr"] == opts.lr).all()
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainingOptions(lr_schedule="linear")


def test_classifier_input_l1_shrinks_the_weights_of_inputs_that_carry_no_signal():
    from surrogates.ensemble_classifier import CLASSIFIER_INPUT_L1, CLASSIFIER_LR

    g = torch.Generator().manual_seed(5)
    X = torch.rand(100, 12, generator=g, dtype=torch.double)
    y = ((X[:, 0] > 0.6) & (X[:, 1] > 0.3)).double()  # columns 2-11 are noise
    opts = TrainingOptions(epochs=60, lr=1e-2, validation_fraction=0.0)
    weights = {}
    for l1 in (None, CLASSIFIER_INPUT_L1, 0.0, 0.01):  # None: the classifier's default
        clf = NeuralClassifierEnsemble(1, TINY, dataclasses.replace(opts, input_l1=l1)).fit(X, y)
        weights[l1] = clf.net_.head[0].weight[0].detach().abs()  # `d x hidden`: the weights of each input
    assert torch.equal(weights[None], weights[CLASSIFIER_INPUT_L1]) and CLASSIFIER_INPUT_L1 > 0
    default = NeuralClassifierEnsemble(1, TINY, TrainingOptions(epochs=20)).fit(X, y).history_["lr"]
    assert default.iloc[0] == pytest.approx(CLASSIFIER_LR, rel=0.1)  # its own step size, cosine-decayed
    assert weights[0.01][2:].mean() < 0.25 * weights[0.0][2:].mean()  # the noise columns' weights shrink
    assert weights[0.01][2:].mean() < 0.25 * weights[0.01][:2].mean()  # far more than the signal's
    regression = NeuralEnsemble(1, TINY, opts)
    assert regression._resolved_options().input_l1 == 0.0 and TrainingOptions().input_l1 is None  # regression: none


def test_classifier_stops_on_average_precision_when_the_validation_split_has_enough_positives():
    from surrogates.ensemble_classifier import MIN_VALIDATION_POSITIVES

    g = torch.Generator().manual_seed(6)
    X = torch.rand(400, 2, generator=g, dtype=torch.double)
    opts = TrainingOptions(epochs=5, patience=5)  # stop_on="score", the default
    for threshold, expect_ap in ((0.5, True), (0.98, False)):  # 40 / about 2 validation positives
        y = (X[:, 0] > threshold).double()
        val_loss = NeuralClassifierEnsemble(1, TINY, opts).fit(X, y).history_["val_loss"]
        assert (y.sum() * 0.2 >= MIN_VALIDATION_POSITIVES) == expect_ap
        if expect_ap:  # minus the average precision
            assert val_loss.between(-1, 0).all() and val_loss.min() < -0.9
        else:  # the class-weighted cross-entropy
            assert (val_loss > 0).all()
