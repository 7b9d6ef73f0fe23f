import torch
from botorch.models import MixedSingleTaskGP
from gpytorch.kernels import Kernel, MaternKernel, ScaleKernel

from surrogates.kernel_shapes import fixed_kernel_shapes


def _mixed_gp() -> MixedSingleTaskGP:
    gen = torch.Generator().manual_seed(0)
    X = torch.rand(12, 3, generator=gen, dtype=torch.double)
    X[:, 2] = torch.randint(0, 3, (12,), generator=gen).double()
    return MixedSingleTaskGP(X, X[:, :1].sin() + X[:, 2:], cat_dims=[2]).eval()


def test_predictions_are_the_same_and_sub_kernels_are_not_walked(monkeypatch) -> None:
    model = _mixed_gp()
    Xt = torch.rand(5, 3, dtype=torch.double)
    Xt[:, 2] = torch.tensor([0.0, 1.0, 2.0, 1.0, 0.0])
    walks = []
    walk = Kernel.named_sub_kernels
    monkeypatch.setattr(Kernel, "named_sub_kernels", lambda self: walks.append(1) or walk(self))
    before = model.posterior(Xt)
    outside = len(walks)
    with fixed_kernel_shapes(model):
        walks.clear()
        inside = model.posterior(Xt)
        assert len(walks) < outside / 4
    assert torch.equal(before.mean, inside.mean) and torch.equal(before.variance, inside.variance)


def test_the_property_is_restored_and_a_shape_set_inside_is_honoured() -> None:
    original = Kernel.batch_shape
    kernel = ScaleKernel(MaternKernel())
    with fixed_kernel_shapes(kernel):
        assert kernel.batch_shape == torch.Size([])
        kernel.base_kernel.batch_shape = torch.Size([2])
        assert kernel.batch_shape == torch.Size([2])  # the parent follows its sub-kernel
    assert Kernel.batch_shape is original
    other = MaternKernel()
    with fixed_kernel_shapes(kernel):
        assert other.batch_shape == torch.Size([])  # kernels not named are computed as usual
