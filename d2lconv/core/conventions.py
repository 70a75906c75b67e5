"""What each framework stores differently, and the conversions between two of them (they need no rewrite).

``LAYOUTS`` (data and weight layouts) and ``BATCH_NORM`` (momentum, epsilon, running-variance
estimate) hold the facts; ``layout_steps(source, target, net)`` names every conversion a port
between two frameworks makes, each with its reason, for ``Ported.steps``.
"""

from __future__ import annotations

import math

from .network import Network, dense_after_flatten

FRAMEWORK_NAMES = {
    "numpy": "NumPy (d2lconv's layers)",
    "torch": "PyTorch",
    "tensorflow": "Keras",
    "mxnet": "MXNet Gluon",
    "paddle": "PaddlePaddle",
    "jax": "Flax",
    "onnx": "ONNX",
}
# How each framework lays out data and weights; d2lconv's description uses the NumPy/torch column.
LAYOUTS: dict[str, dict[str, str]] = {
    name: {
        "data": "NCHW",
        "conv2d": "OIHW",
        "linear": "(out, in)",
        "conv_transpose2d": "(in, out/groups, kh, kw)",
        "flatten": "CHW",
    }
    for name in ("numpy", "torch", "mxnet", "paddle", "onnx")
}
LAYOUTS["paddle"]["linear"] = "(in, out)"
LAYOUTS["tensorflow"] = {
    "data": "NHWC",
    "conv2d": "HWIO",
    "linear": "(in, out)",
    "conv_transpose2d": "(kh, kw, out, in)",
    "flatten": "HWC",
}
LAYOUTS["jax"] = {
    "data": "NHWC",
    "conv2d": "HWIO",
    "linear": "(in, out)",
    "conv_transpose2d": "(kh, kw, in, out), spatially flipped",
    "flatten": "HWC",
}
# BatchNorm's conventions: what "momentum" weighs ("new": the new batch, PyTorch; "kept": the running
# value), the default epsilon, and the variance estimate training puts into the running variance
# (NumPy's layer follows the description's, so either). Readers store PyTorch's momentum; writers of a
# "kept" framework pass momentum_kept(m); every writer passes eps explicitly.
BATCH_NORM: dict[str, dict] = {
    "numpy": {"momentum": "new", "eps": 1e-5, "variance": "either"},
    "torch": {"momentum": "new", "eps": 1e-5, "variance": "unbiased"},
    "tensorflow": {"momentum": "kept", "eps": 1e-3, "variance": "biased"},
    "mxnet": {"momentum": "kept", "eps": 1e-5, "variance": "biased"},
    "paddle": {"momentum": "kept", "eps": 1e-5, "variance": "biased"},
    "jax": {"momentum": "kept", "eps": 1e-5, "variance": "biased"},
    "onnx": {"momentum": "kept", "eps": 1e-5, "variance": "biased"},
}
_MOMENTUM = {"new": "the weight of the new batch", "kept": "the weight kept on the running value"}
# The rules as one table (the README shows it): trap -> what port does.
RULES: tuple[tuple[str, str], ...] = (
    (
        "weight layouts",
        "conv OIHW <-> HWIO (Keras, Flax); dense (out, in) <-> (in, out) (Keras, Flax, Paddle); "
        "transposed conv (in, out/g, kh, kw) <-> Keras (kh, kw, out, in) <-> Flax (kh, kw, in, out) flipped",
    ),
    ("data layout", "NCHW (NumPy, PyTorch, MXNet, Paddle) <-> NHWC (Keras, Flax): inputs and feature maps transposed"),
    ("flatten order", "an NHWC framework flattens (H, W, C): the first dense layer's input rows are permuted"),
    ("stride-2 padding", "symmetric padding is not 'same' (extra row bottom/right): Keras gets a ZeroPadding2D"),
    ("asymmetric padding", "PyTorch and MXNet pad symmetrically: an explicit zero-padding layer pads first"),
    ("'same' + dilation", "Paddle's 'SAME' ignores dilation; MXNet has no 'same': explicit pads are computed"),
    ("max-pool padding", "padding counts as -inf: Keras gets 'same' where it matches, else an explicit -inf pad"),
    ("average divisor", "count_include_pad: Paddle's exclusive = not count_include_pad; Keras 'same' excludes pads"),
    (
        "ceil mode",
        "Keras and Flax have none, Paddle and MXNet keep a window PyTorch drops: the overhang becomes explicit padding",
    ),
)


def layout_steps(source: str, target: str, net: Network) -> list[str]:
    """The layout conversions between ``source`` and ``target`` that ``net`` needs, each with its reason."""
    before, after, steps = LAYOUTS[source], LAYOUTS[target], []
    kinds = {layer.kind for layer in net.layers}
    if before["data"] != after["data"]:
        steps.append(
            f"data: {FRAMEWORK_NAMES[target]} takes {after['data']} batches, {FRAMEWORK_NAMES[source]} "
            f"{before['data']}: inputs are transposed {before['data']} -> {after['data']}"
        )
    for kind in ("conv2d", "conv_transpose2d", "linear"):
        if kind in kinds and before[kind] != after[kind]:
            steps.append(
                f"{kind} weights: {FRAMEWORK_NAMES[source]} stores them {before[kind]}, "
                f"{FRAMEWORK_NAMES[target]} {after[kind]}: transposed"
            )
    if before["flatten"] != after["flatten"]:
        for index, chw in dense_after_flatten(net).items():
            if chw[1] * chw[2] > 1:
                steps.append(
                    f"layer {index} (linear): the flatten before it reads a {chw} feature map in "
                    f"{before['flatten']} order in {FRAMEWORK_NAMES[source]} and {after['flatten']} order "
                    f"in {FRAMEWORK_NAMES[target]}: its input columns are permuted to match"
                )
    return steps + batch_norm_steps(source, target, net)


def momentum_new_batch(kept: float) -> float:
    """PyTorch's momentum (the weight of the new batch) from Keras's/Flax's/Paddle's/Gluon's (the weight
    kept on the running value): 1 - kept, rounded to 12 digits so that 0.99 gives 0.01, not 0.010000000000000009."""
    return round(1.0 - float(kept), 12)


def momentum_kept(new_batch: float) -> float:
    """Keras's/Flax's/Paddle's/Gluon's momentum (the weight kept on the running value) from PyTorch's."""
    return round(1.0 - float(new_batch), 12)


def unbiased_gap(momentum: float, count: int) -> float:
    """How far apart, relative to the batch variance, the running variances of a framework that updates
    them with the unbiased estimate and one using the biased estimate are after one training step on
    ``count`` = N*H*W values per channel: momentum * (count / (count - 1) - 1) = momentum / (count - 1)."""
    return momentum / (count - 1) if count > 1 else math.inf


def batch_norm_steps(source: str, target: str, net: Network) -> list[str]:
    """The BatchNorm conventions that differ between ``source`` and ``target``, each with its reason."""
    norms = [layer for layer in net.layers if layer.kind == "batch_norm"]
    if not norms:
        return []
    before, after, steps = BATCH_NORM[source], BATCH_NORM[target], []
    more = len(norms) > 1
    names = f"{len(norms)} batch_norm node{'s' if more else ''} ({norms[0].name}{', ...' if more else ''})"
    if before["momentum"] != after["momentum"]:
        momenta = sorted({layer.args["momentum"] for layer in norms})
        old, new = (
            (momenta, [momentum_kept(m) for m in momenta])
            if after["momentum"] == "kept"
            else ([momentum_kept(m) for m in momenta], momenta)
        )
        steps.append(
            f"{names}: momentum {old} in {FRAMEWORK_NAMES[source]} ({_MOMENTUM[before['momentum']]}) is "
            f"{new} in {FRAMEWORK_NAMES[target]} ({_MOMENTUM[after['momentum']]})"
        )
    epsilons = sorted({layer.args["eps"] for layer in norms})
    if any(eps != after["eps"] for eps in epsilons):
        steps.append(
            f"{names}: epsilon {epsilons} is set explicitly ({FRAMEWORK_NAMES[target]}'s default is {after['eps']:g})"
        )
    estimates = {layer.args["variance"] for layer in norms}
    if after["variance"] != "either" and estimates != {after["variance"]}:
        source_estimate = " / ".join(sorted(estimates))
        steps.append(
            f"{names}: in training, {FRAMEWORK_NAMES[source]} updates the running variance with the "
            f"{source_estimate} batch variance and {FRAMEWORK_NAMES[target]} with the {after['variance']} one, "
            "which no option changes: inference is identical; after one training step on n = N*H*W values per "
            "channel the running variances differ by momentum / (n - 1) of the batch variance (e.g. "
            f"{unbiased_gap(0.1, 32):.2g} for momentum 0.1 and n = 32)"
        )
    fixed = [layer.name for layer in norms if layer.args.get("fixed_gamma")]
    if fixed:
        steps.append(
            f"batch_norm {', '.join(fixed[:3])}{', ...' if len(fixed) > 3 else ''}: {FRAMEWORK_NAMES[source]}'s "
            "BatchNorm has fix_gamma=True, so it ignores gamma and scales by 1: gamma is read as ones"
        )
    return steps
