"""``d2lconv demo --section 7.5|7.6``: batch normalisation and ResNet, walked in the terminal.

What the book's sections show, computed on the chosen backend: the from-scratch ``batch_norm`` on a
small batch, who means what by "momentum", BN-LeNet's first losses beside LeNet's; the ``Residual``
block's shapes and ResNet-18's, run block by block in the framework's own layers.
"""

from __future__ import annotations

import numpy as np

from ..book import batch_norm as bn
from ..book import modern_nets
from ..core.args import explicit_padding
from ..core.conventions import momentum_kept
from ..harness.parity.checks import batch_norm as bn_checks
from ..harness.parity.checks import modern_nets as modern_checks
from ..porting import FACTS

# Four examples of two features: batch means 4 and 5, biased variances 5 and 5.
SMALL_BATCH = np.array([[1, 2], [3, 6], [5, 4], [7, 8]], np.float32)
FIRST_STEPS = 25  # one epoch of the first 800 training images in minibatches of 32


def _show(title: str, array: object) -> None:
    print(f"{title}\n{np.array2string(np.asarray(array), precision=4, suppress_small=True)}\n")


def batch_normalization() -> None:
    """7.5: the function in both modes, the momentum conventions, BN-LeNet's first losses against LeNet's."""
    import d2lconv as dc

    ones, zeros = np.ones(2, np.float32), np.zeros(2, np.float32)
    print("1. The book's batch_norm on 4 examples of 2 features (gamma 1, beta 0, moving mean 0, variance 1)\n")
    _show("X =", SMALL_BATCH)
    Y, mean, var = (dc.to_numpy(v) for v in dc.batch_norm(SMALL_BATCH, ones, zeros, zeros, ones, training=True))
    _show("training: (X - batch mean [4, 5]) / sqrt(biased batch variance [5, 5] + 1e-5) =", Y)
    print(f"the moving statistics, 0.9 of the old value + 0.1 of the batch: mean {mean}, variance {var}\n")
    Y, _, _ = dc.batch_norm(SMALL_BATCH, ones, zeros, mean, var, training=False)
    _show("prediction: (X - moving mean) / sqrt(moving variance + 1e-5), the statistics unchanged =", dc.to_numpy(Y))

    print("2. What 'momentum' means: d2lconv's is the weight of the new batch (0.1), PyTorch's convention")
    conventions = bn.momentum_conventions(facts for name, facts in FACTS.items() if name != "numpy")
    width = max(map(len, conventions))
    for who, convention in conventions.items():
        print(f"  {who:<{width}}  {'weight of the new batch' if convention == 'new' else 'weight of the old value'}")
    mean = zeros
    for _ in range(10):
        _, mean, _ = dc.batch_norm(SMALL_BATCH, ones, zeros, mean, ones, momentum=bn.MOMENTUM)
    kept = zeros
    for _ in range(10):
        _, kept, _ = dc.batch_norm(SMALL_BATCH, ones, zeros, kept, ones, momentum=momentum_kept(0.1))
    print(
        f"\nTen batches of mean [4, 5] from a moving mean of 0: momentum 0.1 (the new batch's weight; d2l-zh's 0.9 "
        f"as the old value's) gives {np.round(dc.to_numpy(mean), 3)}; d2l-zh's Paddle tab writes "
        f"BatchNorm2D(momentum=0.1), which keeps 10 % of the old value: {np.round(dc.to_numpy(kept), 3)}\n"
    )

    print(f"3. The first {FIRST_STEPS} losses from seed 0 on the first 800 digits, minibatches of 32")
    data = dc.digits()
    small = dc.Digits(data.train_x[: bn_checks.TRAIN_IMAGES], data.train_y[: bn_checks.TRAIN_IMAGES],
                      data.test_x[: bn_checks.TEST_IMAGES], data.test_y[: bn_checks.TEST_IMAGES])  # fmt: skip
    for net in ("lenet", "bn-lenet"):
        fit = dc.train(net, epochs=1, data=small)
        shown = "  ".join(f"{loss:.3f}" for loss in fit.losses[:FIRST_STEPS:4])
        print(f"  {net:<9} (lr {fit.lr:g}): {shown}")
    print(
        "The sigmoid LeNet sits at ln 10 = 2.303 for its first epochs; with a batch normalisation before each "
        "sigmoid it learns at once.\nd2lconv parity --sections 7.5-training compares BN-LeNet's first 50 losses "
        "and running statistics on every backend."
    )


def resnet() -> None:
    """7.6: the Residual block's two shapes, ResNet-18's summary, and its blocks run in the framework."""
    import d2lconv as dc

    tab = dc.load_backend(dc.get_backend())
    X = np.random.default_rng(0).standard_normal((4, 3, 6, 6)).astype(np.float32)
    print("1. The Residual block (two 3x3 convolutions with BatchNorm, the input added before the last ReLU)\n")
    print(f"X: {X.shape}")
    for title, (c_out, stride) in (("Residual(3, 3)", (3, 1)), ("Residual(3, 6, use_1x1conv=True, strides=2)", (6, 2))):
        block = tab.build_network(modern_nets.residual(3, c_out, stride))
        print(f"{title}(X): {np.asarray(dc.to_numpy(tab.run_network(block, X))).shape}")

    print("\n2. ResNet-18 on the book's 96x96 input (d2l-en; d2l-zh prints 224x224)\n")
    net = dc.ResNet18(seed=0)
    summary = dc.layer_summary(net)
    for name, shape in summary:
        print(f"  {name} output shape:\t (1, {', '.join(map(str, shape))})")
    computed = [tuple(int(v) for v in shape) for shape in modern_checks.block_shapes("ResNet18").values()]
    same = "the same" if computed == [shape for _, shape in summary] else f"{computed}: NOT the same"
    print(f"Run block by block in {tab.FRAMEWORK.__name__}'s own layers: {same} shapes.")
    print(f"On 224x224: {', '.join(str(shape) for _, shape in dc.layer_summary(net, (1, 224, 224)))}\n")

    conv_pad = explicit_padding("same", (96, 96), (7, 7), (2, 2), (1, 1))
    pool_pad = explicit_padding("same", (48, 48), (3, 3), (2, 2), (1, 1))
    print(
        "3. The stem's stride-2 convolution and pooling pad 3 and 1 in the PyTorch and MXNet tabs; the TensorFlow "
        f"and JAX tabs write padding='same', which pads {conv_pad[:2]} (top, bottom) and {pool_pad[:2]}: the same "
        "shapes on even inputs, every window one pixel lower and to the right."
    )
