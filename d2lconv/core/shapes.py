"""The shape every node gives: what checks a description and what the rules of ``plan`` read."""

from __future__ import annotations

import numpy as np

from .args import conv_output_size, pool2d_args
from .layer import SHAPE_KEEPING, Layer, pad_pairs, resolve_padding


def node_output_shape(layer: Layer, shapes: list[tuple[int, ...]], index: int = 0) -> tuple[int, ...]:
    """The shape (batch dimension left out) node ``layer`` gives for inputs of ``shapes``."""
    if layer.kind in ("add", "mul"):
        try:
            return tuple(int(v) for v in np.broadcast_shapes(*shapes))
        except ValueError:
            raise ValueError(
                f"layer {index} ({layer.name}, {layer.kind}) cannot broadcast its inputs' shapes {shapes}"
            ) from None
    if layer.kind == "concat":
        rests = {shape[1:] for shape in shapes}
        if len(rests) != 1 or any(len(shape) == 0 for shape in shapes):
            raise ValueError(
                f"layer {index} ({layer.name}, concat) joins on the channel axis inputs that differ elsewhere: {shapes}"
            )
        return (sum(shape[0] for shape in shapes), *shapes[0][1:])
    return output_shape(layer, shapes[0], index)


def output_shape(layer: Layer, shape: tuple[int, ...], index: int = 0) -> tuple[int, ...]:
    """The shape (batch dimension left out) single-input ``layer`` gives for an input of ``shape``."""
    args, kind = layer.args, layer.kind
    if kind in SHAPE_KEEPING:
        if kind == "batch_norm" and (not shape or shape[0] != args["num_features"]):
            raise ValueError(f"layer {index} (batch_norm) expects {args['num_features']} channels, got shape {shape}")
        if kind == "softmax" and not 1 <= args["axis"] <= len(shape):
            raise ValueError(f"layer {index} (softmax) has axis {args['axis']}, outside a batch of shape {shape}")
        return shape
    if kind == "flatten":
        return (int(np.prod(shape)),)
    if kind == "linear":
        if shape != (args["in_features"],):
            raise ValueError(f"layer {index} (linear) expects {args['in_features']} features, got shape {shape}")
        return (args["out_features"],)
    if len(shape) != 3:
        raise ValueError(f"layer {index} ({kind}) needs a (C, H, W) input, got shape {shape}")
    c, h, w = shape
    if kind == "global_avg_pool":
        return (c, 1, 1) if args["keepdims"] else (c,)
    if kind == "adaptive_avg_pool":
        oh, ow = args["output_size"]
        if h % oh or w % ow:
            raise ValueError(
                f"layer {index} (adaptive_avg_pool) output size {(oh, ow)} must divide the input's {(h, w)} "
                "(only then is it one average pooling in every framework)"
            )
        return (c, oh, ow)
    if kind in ("zero_pad2d", "constant_pad2d"):
        top, bottom, left, right = args["padding"]
        return (c, h + top + bottom, w + left + right)
    if kind == "conv2d":
        if c != args["in_channels"]:
            raise ValueError(f"layer {index} (conv2d) expects {args['in_channels']} channels, got {c}")
        out = conv_output_size(
            (h, w), args["kernel_size"], args["stride"], pad_pairs(resolve_padding(layer, (h, w))), args["dilation"]
        )
        return (args["out_channels"], *out)
    if kind == "conv_transpose2d":
        if c != args["in_channels"]:
            raise ValueError(f"layer {index} (conv_transpose2d) expects {args['in_channels']} channels, got {c}")
        sizes = []
        for axis, n in enumerate((h, w)):
            k, s, d = args["kernel_size"][axis], args["stride"][axis], args["dilation"][axis]
            before, after = args["padding"][2 * axis : 2 * axis + 2]
            sizes.append((n - 1) * s + d * (k - 1) + 1 - before - after + args["output_padding"][axis])
        return (args["out_channels"], *sizes)
    pool = pool2d_args(
        (1, c, h, w),
        args["kernel_size"],
        args["stride"],
        pad_pairs(resolve_padding(layer, (h, w))),
        args.get("dilation", 1),
        args["ceil_mode"],
    )
    return (c, *pool.out_hw)


def flatten_permutation(chw: tuple[int, int, int]) -> np.ndarray:
    """Indices that reorder a CHW-flattened vector into HWC order: ``hwc = chw[perm]``.

    An NHWC framework flattens (H, W, C); d2lconv's description flattens (C, H, W). The
    first dense layer after a flatten takes its input columns in this order there.
    """
    c, h, w = chw
    return np.transpose(np.arange(c * h * w).reshape(c, h, w), (1, 2, 0)).reshape(-1)
