"""The porting rules, written once: what each framework's own layers can express, and the rewrites.

``plan(net, target)`` turns a ``Network`` into one whose every layer the target's writer
maps onto ONE native layer, and lists each rewrite it made with its reason. The writers
(``build_network`` in each tab) only translate layer by layer and convert weight layouts.
``layout_steps(source, target, net)`` names the layout conversions between two frameworks.
A layer the target cannot express exactly raises ``ValueError`` naming it; nothing is
ever approximated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .network import NO_PADDING, Layer, Network, dense_after_flatten, pad_pairs, resolve_padding
from .padding import effective_size, explicit_padding, pool2d_args

FRAMEWORK_NAMES = {"numpy": "NumPy (d2lconv's layers)", "torch": "PyTorch", "tensorflow": "Keras",
                   "mxnet": "MXNet Gluon", "paddle": "PaddlePaddle", "jax": "Flax"}
# How each framework lays out data and weights; d2lconv's description uses the NumPy/torch column.
LAYOUTS: dict[str, dict[str, str]] = {
    name: {"data": "NCHW", "conv2d": "OIHW", "linear": "(out, in)", "conv_transpose2d": "(in, out/groups, kh, kw)",
           "flatten": "CHW"} for name in ("numpy", "torch", "mxnet", "paddle")}
LAYOUTS["paddle"]["linear"] = "(in, out)"
LAYOUTS["tensorflow"] = {"data": "NHWC", "conv2d": "HWIO", "linear": "(in, out)",
                         "conv_transpose2d": "(kh, kw, out, in)", "flatten": "HWC"}
LAYOUTS["jax"] = {"data": "NHWC", "conv2d": "HWIO", "linear": "(in, out)",
                  "conv_transpose2d": "(kh, kw, in, out), spatially flipped", "flatten": "HWC"}
# The rules as one table (the README shows it): trap -> what port does.
RULES: tuple[tuple[str, str], ...] = (
    ("weight layouts", "conv OIHW <-> HWIO (Keras, Flax); dense (out, in) <-> (in, out) (Keras, Flax, Paddle); "
     "transposed conv (in, out/g, kh, kw) <-> Keras (kh, kw, out, in) <-> Flax (kh, kw, in, out) flipped"),
    ("data layout", "NCHW (NumPy, PyTorch, MXNet, Paddle) <-> NHWC (Keras, Flax): inputs and feature maps transposed"),
    ("flatten order", "an NHWC framework flattens (H, W, C): the first dense layer's input rows are permuted"),
    ("stride-2 padding", "symmetric padding is not 'same' (extra row bottom/right): Keras gets a ZeroPadding2D"),
    ("asymmetric padding", "PyTorch and MXNet pad symmetrically: an explicit zero-padding layer pads first"),
    ("'same' + dilation", "Paddle's 'SAME' ignores dilation; MXNet has no 'same': explicit pads are computed"),
    ("max-pool padding", "padding counts as -inf: Keras gets 'same' where it matches, else an explicit -inf pad"),
    ("average divisor", "count_include_pad: Paddle's exclusive = not count_include_pad; Keras 'same' excludes pads"),
    ("ceil mode", "Keras and Flax have none, Paddle and MXNet keep a window PyTorch drops: the overhang "
     "becomes explicit padding"),
)


@dataclass
class Plan:
    """A network the target expresses layer for layer, what was rewritten and why, and whether the
    rewrite holds only for the network's input size (a resolved 'same', a ceil-mode overhang)."""

    network: Network
    steps: list[str] = field(default_factory=list)
    size_dependent: bool = False


def cannot(index: int, layer: Layer, what: str, target: str) -> ValueError:
    """The error for a layer the target cannot express exactly."""
    return ValueError(f"layer {index} ({layer.kind} {layer.args}) cannot be ported to {target}: "
                      f"{FRAMEWORK_NAMES[target]} cannot express {what} exactly")


def _symmetric(pads: tuple[int, ...]) -> bool:
    return pads[0] == pads[1] and pads[2] == pads[3]


def plan(net: Network, target: str) -> Plan:
    """Rewrite ``net`` into layers ``target`` expresses one for one (padding, pooling, ceil mode)."""
    result = Plan(Network(tuple(net.input_shape), []))
    shapes = net.shapes()
    for index, layer in enumerate(net.layers):
        hw = tuple(shapes[index][1:]) if len(shapes[index]) == 3 else (0, 0)
        if layer.kind in ("conv2d", "conv_transpose2d"):
            new = _plan_conv(index, layer, hw, target, result)
        elif layer.kind == "max_pool2d":
            new = _plan_pool(index, layer, hw, target, result, "max")
        elif layer.kind == "avg_pool2d":
            new = _plan_pool(index, layer, hw, target, result, "avg")
        elif layer.kind == "constant_pad2d" and layer.args["value"] == 0:
            new = [Layer("zero_pad2d", {"padding": layer.args["padding"]})]
        elif layer.kind == "constant_pad2d" and target == "mxnet":
            raise cannot(index, layer, "a padding layer (Gluon has none)", target)
        elif layer.kind == "zero_pad2d" and target == "mxnet":
            raise cannot(index, layer, "a zero-padding layer (Gluon has none; only a convolution pads)", target)
        else:
            new = [layer]
        result.network.layers.extend(new)
    return result


def _plan_conv(index: int, layer: Layer, hw: tuple[int, int], target: str, result: Plan) -> list[Layer]:
    args = layer.args
    if layer.kind == "conv_transpose2d":
        if target in ("tensorflow", "jax") and args["groups"] > 1:
            raise cannot(index, layer, "a grouped transposed convolution", target)
        if target == "tensorflow" and args["stride"] != (1, 1) and args["dilation"] != (1, 1):
            raise cannot(index, layer, "a transposed convolution with both stride and dilation above 1", target)
        return [layer]
    if target == "tensorflow" and args["stride"] != (1, 1) and args["dilation"] != (1, 1):
        raise cannot(index, layer, "a convolution with both stride and dilation above 1 (Conv2D refuses it)",
                     target)
    same = args["padding"] == "same"
    pads = resolve_padding(layer, hw)
    same_pads = explicit_padding("same", hw, args["kernel_size"], args["stride"], args["dilation"])
    stride_one = args["stride"] == (1, 1)
    if target in ("numpy", "jax") or (target == "paddle" and not (same and args["dilation"] != (1, 1))):
        return [layer]
    if target == "torch" and same and stride_one or target in ("torch", "mxnet") and not same and _symmetric(pads):
        return [layer]
    if target == "tensorflow" and (pads == NO_PADDING or pads == same_pads):
        if not same and pads != NO_PADDING:
            result.steps.append(f"layer {index} (conv2d): padding {pads[::2]} equals Keras's 'same' here "
                                f"(stride {args['stride']}), so Conv2D(padding='same') is used")
            result.size_dependent |= not stride_one
        return [layer.with_args(padding="same" if pads != NO_PADDING else NO_PADDING)]
    if same:
        result.size_dependent |= not stride_one
        why = {"torch": "torch accepts padding='same' only with stride 1", "mxnet": "Gluon has no 'same'",
               "paddle": "Paddle's 'SAME' silently ignores dilation", "tensorflow": ""}[target]
        result.steps.append(f"layer {index} (conv2d): 'same' on a {hw[0]}x{hw[1]} input is padding (top, bottom, "
                            f"left, right) = {pads}; {why}, so the padding is written out")
        if target == "paddle" or _symmetric(pads):
            return [layer.with_args(padding=pads)]
    if target == "mxnet":
        raise cannot(index, layer, f"the asymmetric padding {pads} (Gluon pads symmetrically, has no padding layer)",
                     target)
    reason = ("Keras's Conv2D pads only 'valid' or 'same', and 'same' here would pad (top, bottom, left, right) = "
              f"{same_pads}, putting the extra row at the bottom/right" if target == "tensorflow"
              else f"{FRAMEWORK_NAMES[target]} pads a convolution symmetrically")
    result.steps.append(f"layer {index} (conv2d): padding (top, bottom, left, right) = {pads}; {reason}: "
                        "an explicit zero-padding layer pads first, then the convolution is 'valid'")
    return [Layer("zero_pad2d", {"padding": pads}), layer.with_args(padding=NO_PADDING)]


def _plan_pool(index: int, layer: Layer, hw: tuple[int, int], target: str, result: Plan, mode: str) -> list[Layer]:
    args = layer.args
    if target == "numpy":
        return [layer]
    kernel, stride, dilation = args["kernel_size"], args["stride"], args.get("dilation", (1, 1))
    if dilation != (1, 1) and target != "torch":
        raise cannot(index, layer, "a dilated pooling window", target)
    pads = resolve_padding(layer, hw)
    ceil = bool(args["ceil_mode"])
    pool = pool2d_args((1, 1, *hw), kernel, stride, pad_pairs(pads), dilation, ceil)
    overhang = (pool.padded[1] - pads[1], pool.padded[3] - pads[3])
    include_pad = args.get("count_include_pad", False) and pads != NO_PADDING
    if args["padding"] == "same":
        result.size_dependent |= stride != (1, 1)
    if target == "torch":
        if _symmetric(pads) and pads[0] <= kernel[0] // 2 and pads[2] <= kernel[1] // 2:
            return [layer.with_args(padding=pads)]
        if include_pad and overhang != (0, 0) or mode == "avg" and not include_pad and pads != NO_PADDING:
            raise cannot(index, layer, f"average pooling with the padding {pads} and this divisor", target)
        return _pad_then_pool(index, layer, pool, mode, target, result, "its pooling pads symmetrically, at most "
                              "half the window")
    if overhang != (0, 0):
        result.size_dependent = True
    floor_hw = [math.floor((n + p[0] + p[1] - effective_size(k, d)) / s) + 1
                for n, p, k, d, s in zip(hw, (pads[:2], pads[2:]), kernel, dilation, stride, strict=True)]
    window_dropped = ceil and tuple(floor_hw) != pool.out_hw and _extra_window(hw, pads, kernel, stride)
    if target in ("mxnet", "paddle") and _symmetric(pads) or target == "paddle":
        if not window_dropped:
            return [layer.with_args(padding=pads)]
        if target == "mxnet" or include_pad:
            raise cannot(index, layer, "ceil mode here: it keeps a last window that starts in the padding, "
                         "which PyTorch (and d2lconv) drop", target)
        result.steps.append(f"layer {index} ({layer.kind}): ceil mode in Paddle keeps a last window that starts "
                            "in the padding; the overhang is written as padding instead, in floor mode")
        return [layer.with_args(padding=pool.padded, ceil_mode=False, count_include_pad=False)]
    if target == "mxnet":
        raise cannot(index, layer, f"the asymmetric pooling padding {pads}", target)
    if target == "jax":
        if include_pad and overhang != (0, 0):
            raise cannot(index, layer, "ceil mode with padding counted in the divisor", target)
        if ceil and overhang != (0, 0):
            result.steps.append(f"layer {index} ({layer.kind}): Flax has no ceil mode: the overhang "
                                f"{overhang} (bottom, right) on a {hw[0]}x{hw[1]} input becomes padding that "
                                f"{'counts as -inf' if mode == 'max' else 'stays out of the divisor'}")
        return [layer.with_args(padding=pool.padded, ceil_mode=False, **({} if mode == "max" else
                                {"count_include_pad": include_pad}))]
    # Keras: 'valid', or 'same' (SAME_UPPER; pads count as -inf / stay out of the divisor).
    same_pads = explicit_padding("same", hw, kernel, stride, (1, 1))
    same_hw = tuple(math.ceil(n / s) for n, s in zip(hw, stride, strict=True))
    if pool.padded == NO_PADDING:
        return [layer.with_args(padding=NO_PADDING, ceil_mode=False)]
    if not include_pad and same_hw == pool.out_hw and (same_pads[0], same_pads[2]) == (pads[0], pads[2]):
        result.size_dependent |= stride != (1, 1)
        result.steps.append(f"layer {index} ({layer.kind}): padding {pads}{' in ceil mode' if ceil else ''} on a "
                            f"{hw[0]}x{hw[1]} input places the windows as Keras's 'same' does, and 'same' pads "
                            f"{'with -inf' if mode == 'max' else 'outside the divisor'}: padding='same'")
        return [layer.with_args(padding="same", ceil_mode=False)]
    if mode == "avg" and (not include_pad or overhang != (0, 0)):
        raise cannot(index, layer, f"average pooling with padding {pads}{' in ceil mode' if ceil else ''} "
                     "and this divisor", target)
    return _pad_then_pool(index, layer, pool, mode, target, result, "its pooling pads only as 'same'")


def _extra_window(hw: tuple[int, int], pads: tuple[int, ...], kernel: tuple[int, int], stride: tuple[int, int]) -> bool:
    """Whether a ceil-mode pooling's last window would start inside the bottom/right padding (torch drops it)."""
    for n, before, after, k, s in zip(hw, pads[::2], pads[1::2], kernel, stride, strict=True):
        out = math.ceil((n + before + after - k) / s) + 1
        if (out - 1) * s >= n + before:
            return True
    return False


def _pad_then_pool(index: int, layer: Layer, pool, mode: str, target: str, result: Plan, why: str) -> list[Layer]:
    value = -math.inf if mode == "max" else 0.0
    padded = pool.padded
    result.steps.append(f"layer {index} ({layer.kind}): padding (top, bottom, left, right) = {padded}; "
                        f"{FRAMEWORK_NAMES[target]} {why}: an explicit padding layer with "
                        f"{'-inf (so padding never wins the max)' if mode == 'max' else 'zeros'} pads first, "
                        "then the pooling is 'valid'")
    return [Layer("constant_pad2d", {"padding": padded, "value": value}),
            layer.with_args(padding=NO_PADDING, ceil_mode=False)]


def layout_steps(source: str, target: str, net: Network) -> list[str]:
    """The layout conversions between ``source`` and ``target`` that ``net`` needs, each with its reason."""
    before, after, steps = LAYOUTS[source], LAYOUTS[target], []
    kinds = {layer.kind for layer in net.layers}
    if before["data"] != after["data"]:
        steps.append(f"data: {FRAMEWORK_NAMES[target]} takes {after['data']} batches, {FRAMEWORK_NAMES[source]} "
                     f"{before['data']}: inputs are transposed {before['data']} -> {after['data']}")
    for kind in ("conv2d", "conv_transpose2d", "linear"):
        if kind in kinds and before[kind] != after[kind]:
            steps.append(f"{kind} weights: {FRAMEWORK_NAMES[source]} stores them {before[kind]}, "
                         f"{FRAMEWORK_NAMES[target]} {after[kind]}: transposed")
    if before["flatten"] != after["flatten"]:
        for index, chw in dense_after_flatten(net).items():
            if chw[1] * chw[2] > 1:
                steps.append(f"layer {index} (linear): the flatten before it reads a {chw} feature map in "
                             f"{before['flatten']} order in {FRAMEWORK_NAMES[source]} and {after['flatten']} order "
                             f"in {FRAMEWORK_NAMES[target]}: its input columns are permuted to match")
    return steps


def unsupported(index: int, layer: object, detail: str = "") -> ValueError:
    """The error for a layer port does not know (or an option of it), listing what it supports."""
    what = f" ({detail})" if detail else ""
    return ValueError(f"layer {index} ({layer!r}) is not supported{what}; port supports sequential networks of: "
                      "2-D convolution, transposed convolution, max and average pooling, zero/constant padding, "
                      "flatten, dense/linear, ReLU, sigmoid, tanh")
