"""A narrow ResNet (d2l-en 8.6, d2l-zh 7.6) that trains on the bundled digits on a CPU: the description.

The book's ResNet - its stem (7x7 convolution of stride 2, padding 3, BatchNorm, ReLU, 3x3 max pooling of
stride 2, padding 1), ``Residual`` blocks (two 3x3 convolutions with BatchNorm, a 1x1 convolution on the
shortcut where the shape changes), global average pooling, a dense layer of 10 - narrowed for 1,438
28x28 digits:

- widths 16, 32, 64 (ResNet-18's 64 ... 512 divided by 4, its last stage left out) and one ``Residual``
  per stage, not two: 28 -> 14 (stem) -> 7 (pooling) -> 7 -> 4 -> 2, so the last stage still sees a 2x2
  map (a fourth stage would be 1x1). 79,000 parameters, ResNet-18 has 11 million; one epoch takes about
  a second on NumPy. In a sweep (seed 0, lr 0.1, minibatches of 16, on the PyTorch tab) widths 8, 16, 32
  ended at 96.9-97.5 % after 15 epochs, 16, 32, 64 at 97.5-97.8 % from epoch 7 to 20; two blocks per stage
  added nothing but time;
- the book's 7x7 stride-2 stem rather than a 3x3 stride-1 one (CIFAR's ResNets): on these upsampled 8x8
  digits the 3x3 stem learnt more slowly, ended at 96.7-96.9 % and cost four times the computation.

Weights as the modern CNNs' (``modern_nets._Graph``): Xavier uniform, zero biases, BatchNorm at its
initial state. The BatchNorm nodes update the running variance with the biased batch variance (the
book's ``batch_norm`` and d2lconv's convention, Keras's, Gluon's, Paddle's and Flax's own layers);
PyTorch's ``nn.BatchNorm2d`` always uses the unbiased one (the registry's ``FACTS[name].batch_norm``).

In float32 the backends' loss curves agree to about 1e-6 and then part after 7 to 36 steps: a ReLU or a max
pooling window tied to within float32 rounding goes the other way in another framework's rounding, and SGD
amplifies it (NumPy's own run parts from itself, at step 16 to 33, when its initial weights move by 1e-7). In
float64 (``d2lconv.train(..., dtype="float64")``) the rounding is a billion times smaller and the curves stay
together: every backend's losses agree with NumPy's to 3e-8 relative over the first epoch (90 steps), PyTorch's
over three epochs (270 steps) to 3e-14.
"""

from __future__ import annotations

from ..core.network import Network, batch_norm
from .batch_norm import EPS, MOMENTUM
from .lenet import IMAGE_SHAPE
from .modern_nets import BookNet, _Graph, _residual

WIDTHS = (16, 32, 64)

# Defaults for the bundled digits, from that sweep (test accuracy after each epoch): lr 0.1 on minibatches of
# 16 passes 95 % in epoch 4 and stays at 97.2-97.8 % from epoch 7; lr 0.05, or minibatches of 32 (lr 0.1
# or 0.2), end at 96.9-97.2 % after 15 epochs. The runs of the backends part after a few dozen steps (see
# tests/test_resnet.py) and wander by a point or so between epochs: after epoch 10 they end at 97.5-98.6 %.
EPOCHS, LR, BATCH_SIZE = 10, 0.1, 16


class _NarrowGraph(_Graph):
    """``_Graph`` whose BatchNorm nodes take ``variance`` ("biased" or "unbiased") into the running variance."""

    def __init__(self, seed: int | None, variance: str) -> None:
        super().__init__(seed)
        self.variance = variance

    def bn(self, name: str, channels: int) -> str:
        return self.add(batch_norm(channels, EPS, MOMENTUM, variance=self.variance), name)


def resnet_network(seed: int | None = 0, variance: str = "biased") -> Network:
    """The narrow ResNet as a ``Network`` on 1x28x28 images: weights from ``seed`` (``None``: zeros, for
    shapes); ``variance``: the estimate its BatchNorm nodes put into the running variance (``"unbiased"``:
    PyTorch's layer's)."""
    g = _NarrowGraph(seed, variance)
    g.conv("b1_conv", IMAGE_SHAPE[0], WIDTHS[0], 7, 2, 3)
    g.bn("b1_bn", WIDTHS[0])
    g.relu("b1_relu")
    g.max_pool("b1_pool", 3, 2, 1)
    c_in = WIDTHS[0]
    for block, c_out in enumerate(WIDTHS, 2):
        _residual(g, f"b{block}_residual1", c_in, c_out, 1 if block == 2 else 2)
        c_in = c_out
    g.head("head", c_in)
    return g.network(IMAGE_SHAPE)


def resnet_blocks() -> BookNet:
    """The narrow ResNet's blocks as ``dc.layer_summary`` prints them (the stem, each stage, the head), weightless."""
    stages = [("Sequential", "b1_pool")] + [("Sequential", f"b{block}_residual1_relu") for block in (2, 3, 4)]
    return BookNet("ResNet", resnet_network(None), (*stages, ("Sequential", "head_linear")), IMAGE_SHAPE)
