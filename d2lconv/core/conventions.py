"""What two frameworks store differently, and the conversions between them (they need no rewrite).

The facts (data and weight layouts; BatchNorm's momentum, epsilon, running-variance estimate) are
each framework's ``FrameworkFacts`` (``core.facts``), declared by the registry and ``d2lconv.porting``;
``layout_steps(source, target, net)`` names every conversion a port between two frameworks makes,
each with its reason, for ``Ported.steps``.
"""

from __future__ import annotations

import math

from .facts import FrameworkFacts
from .network import Network, dense_after_flatten

_MOMENTUM = {"new": "the weight of the new batch", "kept": "the weight kept on the running value"}


def layout_steps(source: FrameworkFacts, target: FrameworkFacts, net: Network) -> list[str]:
    """The layout conversions between ``source`` and ``target`` that ``net`` needs, each with its reason."""
    before, after, steps = source.layouts, target.layouts, []
    kinds = {layer.kind for layer in net.layers}
    if before["data"] != after["data"]:
        steps.append(
            f"data: {target.display} takes {after['data']} batches, {source.display} "
            f"{before['data']}: inputs are transposed {before['data']} -> {after['data']}"
        )
    for kind in ("conv2d", "conv_transpose2d", "linear"):
        if kind in kinds and before[kind] != after[kind]:
            steps.append(
                f"{kind} weights: {source.display} stores them {before[kind]}, "
                f"{target.display} {after[kind]}: transposed"
            )
    if before["flatten"] != after["flatten"]:
        for index, chw in dense_after_flatten(net).items():
            if chw[1] * chw[2] > 1:
                steps.append(
                    f"layer {index} (linear): the flatten before it reads a {chw} feature map in "
                    f"{before['flatten']} order in {source.display} and {after['flatten']} order "
                    f"in {target.display}: its input columns are permuted to match"
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


def batch_norm_steps(source: FrameworkFacts, target: FrameworkFacts, net: Network) -> list[str]:
    """The BatchNorm conventions that differ between ``source`` and ``target``, each with its reason."""
    norms = [layer for layer in net.layers if layer.kind == "batch_norm"]
    if not norms:
        return []
    before, after, steps = source.batch_norm, target.batch_norm, []
    more = len(norms) > 1
    names = f"{len(norms)} batch_norm node{'s' if more else ''} ({norms[0].name}{', ...' if more else ''})"
    if before.momentum != after.momentum:
        momenta = sorted({layer.args["momentum"] for layer in norms})
        old, new = (
            (momenta, [momentum_kept(m) for m in momenta])
            if after.momentum == "kept"
            else ([momentum_kept(m) for m in momenta], momenta)
        )
        steps.append(
            f"{names}: momentum {old} in {source.display} ({_MOMENTUM[before.momentum]}) is "
            f"{new} in {target.display} ({_MOMENTUM[after.momentum]})"
        )
    epsilons = sorted({layer.args["eps"] for layer in norms})
    if any(eps != after.eps for eps in epsilons):
        steps.append(f"{names}: epsilon {epsilons} is set explicitly ({target.display}'s default is {after.eps:g})")
    estimates = {layer.args["variance"] for layer in norms}
    if after.variance != "either" and estimates != {after.variance}:
        source_estimate = " / ".join(sorted(estimates))
        steps.append(
            f"{names}: in training, {source.display} updates the running variance with the "
            f"{source_estimate} batch variance and {target.display} with the {after.variance} one, "
            "which no option changes: inference is identical; after one training step on n = N*H*W values per "
            "channel the running variances differ by momentum / (n - 1) of the batch variance (e.g. "
            f"{unbiased_gap(0.1, 32):.2g} for momentum 0.1 and n = 32)"
        )
    fixed = [layer.name for layer in norms if layer.args.get("fixed_gamma")]
    if fixed:
        steps.append(
            f"batch_norm {', '.join(fixed[:3])}{', ...' if len(fixed) > 3 else ''}: {source.display}'s "
            "BatchNorm has fix_gamma=True, so it ignores gamma and scales by 1: gamma is read as ones"
        )
    return steps
