"""The porting rules, written once: what each framework's own layers can express, and the rewrites.

``plan(net, target)`` turns a ``Network`` into one whose every layer the target's writer
maps onto ONE native layer, and lists each rewrite it made with its reason. What the target's
layers express comes as data (``core.facts.FrameworkFacts``: the registry's, or ONNX's). The writers
(``build_network`` in each tab) only translate layer by layer and convert weight layouts.
A layer the target cannot express exactly raises ``ValueError`` naming it; nothing is
ever approximated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from .args import effective_size, explicit_padding, pool2d_args
from .facts import FrameworkFacts
from .network import NO_PADDING, Layer, Network, pad_pairs, resolve_padding


@dataclass
class Plan:
    """A network the target expresses layer for layer, what was rewritten and why, and whether the
    rewrite holds only for the network's input size (a resolved 'same', a ceil-mode overhang)."""

    network: Network
    steps: list[str] = field(default_factory=list)
    size_dependent: bool = False


def cannot(index: int, layer: Layer, what: str, target: FrameworkFacts) -> ValueError:
    """The error for a layer the target cannot express exactly."""
    return ValueError(
        f"layer {index} ({layer.kind} {layer.args}) cannot be ported to {target.name}: "
        f"{target.display} cannot express {what} exactly"
    )


def _used(net: Network, result: Plan) -> Network:
    """``net`` without the nodes no output depends on: a functional Keras model or a traced graph cannot hold
    them, and they change no output."""
    needed = set(net.outputs)
    for layer in reversed(net.layers):
        if layer.name in needed:
            needed.update(layer.inputs)
    unused = [layer.name for layer in net.layers if layer.name not in needed]
    if not unused:
        return net
    result.steps.append(f"nodes {', '.join(unused)}: no output depends on them, so they are left out")
    return Network(net.input_shape, [layer for layer in net.layers if layer.name in needed], net.outputs)


def _symmetric(pads: tuple[int, ...]) -> bool:
    return pads[0] == pads[1] and pads[2] == pads[3]


def plan(net: Network, target: FrameworkFacts) -> Plan:
    """Rewrite ``net`` into layers ``target`` expresses one for one (padding, pooling, ceil mode).

    Node by node, in graph order: a node rewritten into several (a padding layer, then the layer)
    keeps its name on the last of them, so the nodes that read it are unchanged; a padding node read
    only by the next node may be merged into it (the merged node keeps the later name)."""
    result = Plan(net)
    net = _used(net, result)
    shapes, readers = net.node_shapes(), net.consumers()
    planned: list[Layer] = []
    index = 0
    while index < len(net.layers):
        layer = net.layers[index]
        shape = shapes[layer.inputs[0]]
        hw = (shape[1], shape[2]) if len(shape) == 3 else (0, 0)
        following = net.layers[index + 1] if index + 1 < len(net.layers) else None
        merged = None
        if (
            following is not None
            and layer.name not in net.outputs
            and readers[layer.name] == [following.name]
            and following.inputs == (layer.name,)
        ):
            merged = _merge_padding(index, layer, following, hw, target, result)
        if merged is not None and following is not None:
            planned.append(replace(merged, name=following.name, inputs=layer.inputs))
            index += 2
            continue
        rewritten = _plan_layer(index, layer, hw, target, result)
        inputs = layer.inputs
        for step, new in enumerate(rewritten):
            name = layer.name if step == len(rewritten) - 1 else f"{layer.name}_{new.kind}"
            planned.append(replace(new, name=name, inputs=inputs))
            inputs = (name,)
        index += 1
    result.network = Network(net.input_shape, planned, net.outputs)
    return result


def _plan_layer(index: int, layer: Layer, hw: tuple[int, int], target: FrameworkFacts, result: Plan) -> list[Layer]:
    if layer.kind in ("conv2d", "conv_transpose2d"):
        return _plan_conv(index, layer, hw, target, result)
    if layer.kind in ("max_pool2d", "avg_pool2d"):
        return _plan_pool(index, layer, hw, target, result, layer.kind[:3])
    if layer.kind == "adaptive_avg_pool" and not target.adaptive_pooling:
        return [_adaptive_as_pool(index, layer, hw, target, result)]
    if layer.kind == "constant_pad2d" and layer.args["value"] == 0:
        return [Layer("zero_pad2d", {"padding": layer.args["padding"]})]
    return [layer]


def _merge_padding(
    index: int, pad: Layer, layer: Layer, hw: tuple[int, int], target: FrameworkFacts, result: Plan
) -> Layer | None:
    """A padding layer and the convolution (zeros) or max pooling (-inf) after it, as that layer alone with
    more padding, when the target then expresses it as one layer; else None."""
    value = 0.0 if pad.kind == "zero_pad2d" else pad.args.get("value") if pad.kind == "constant_pad2d" else None
    fits = (
        layer.kind == "conv2d"
        and value == 0.0
        or layer.kind == "max_pool2d"
        and value == -math.inf
        and not layer.args["ceil_mode"]
    ) and layer.args["padding"] != "same"
    if not fits:
        return None
    pads = tuple(a + b for a, b in zip(pad.args["padding"], layer.args["padding"], strict=True))
    if layer.kind == "max_pool2d":
        extent = [effective_size(k, d) for k, d in zip(layer.args["kernel_size"], layer.args["dilation"], strict=True)]
        if max(pads[:2]) >= extent[0] or max(pads[2:]) >= extent[1]:
            return None
    trial = Plan(Network((), []))
    try:
        planned = _plan_layer(index, layer.with_args(padding=pads), hw, target, trial)
    except ValueError:
        return None
    if len(planned) != 1 or trial.steps:
        return None
    result.steps.append(
        f"layers {index}-{index + 1} ({pad.kind}, {layer.kind}): {target.display}'s "
        f"{layer.kind} pads (top, bottom, left, right) = {pads} itself, with "
        f"{'zeros' if value == 0 else '-inf'}: the padding layer is merged into it"
    )
    return planned[0]


def _plan_conv(index: int, layer: Layer, hw: tuple[int, int], target: FrameworkFacts, result: Plan) -> list[Layer]:
    args = layer.args
    if layer.kind == "conv_transpose2d":
        if not target.grouped_conv_transpose and args["groups"] > 1:
            raise cannot(index, layer, "a grouped transposed convolution", target)
        if not target.stride_with_dilation and args["stride"] != (1, 1) and args["dilation"] != (1, 1):
            raise cannot(index, layer, "a transposed convolution with both stride and dilation above 1", target)
        return [layer]
    if not target.stride_with_dilation and args["stride"] != (1, 1) and args["dilation"] != (1, 1):
        raise cannot(index, layer, "a convolution with both stride and dilation above 1 (Conv2D refuses it)", target)
    same = args["padding"] == "same"
    pads = resolve_padding(layer, hw)
    same_pads = explicit_padding("same", hw, args["kernel_size"], args["stride"], args["dilation"])
    stride_one = args["stride"] == (1, 1)
    if target.conv_padding == "valid_or_same" and (pads == NO_PADDING or pads == same_pads):
        if not same and pads != NO_PADDING:
            result.steps.append(
                f"layer {index} (conv2d): padding {pads[::2]} equals {target.display}'s 'same' here "
                f"(stride {args['stride']}), so Conv2D(padding='same') is used"
            )
            result.size_dependent |= not stride_one
        return [layer.with_args(padding="same" if pads != NO_PADDING else NO_PADDING)]
    same_fits = {
        "any": True,
        "stride_one": stride_one,
        "ignores_dilation": args["dilation"] == (1, 1),
        "none": False,
    }[target.same_padding]
    if same and same_fits or not same and target.conv_padding == "explicit":
        return [layer]
    if not same and target.conv_padding == "symmetric" and _symmetric(pads):
        return [layer]
    if same:
        result.size_dependent |= not stride_one
        result.steps.append(
            f"layer {index} (conv2d): 'same' on a {hw[0]}x{hw[1]} input is padding (top, bottom, "
            f"left, right) = {pads}; {target.same_padding_why}, so the padding is written out"
        )
        if target.conv_padding == "explicit" or _symmetric(pads):
            return [layer.with_args(padding=pads)]
    reason = (
        f"{target.display}'s Conv2D pads only 'valid' or 'same', and 'same' here would pad (top, bottom, left, "
        f"right) = {same_pads}, putting the extra row at the bottom/right"
        if target.conv_padding == "valid_or_same"
        else f"{target.display} pads a convolution symmetrically"
    )
    result.steps.append(
        f"layer {index} (conv2d): padding (top, bottom, left, right) = {pads}; {reason}: "
        "an explicit zero-padding layer pads first, then the convolution is 'valid'"
    )
    return [Layer("zero_pad2d", {"padding": pads}), layer.with_args(padding=NO_PADDING)]


def _windows(n: int, k: int, s: int, before: int, after: int, ceil: bool, drop: bool = True) -> int:
    """How many windows a pooling places along one axis (``drop``: the description's rule for a ceil-mode
    window that would start in the padding, PyTorch's; a "keeps_overhang" framework keeps it)."""
    out = (math.ceil if ceil else math.floor)((n + before + after - k) / s) + 1
    return out - 1 if ceil and drop and (out - 1) * s >= n + before else out


def _pool_forms(
    target: FrameworkFacts,
    hw: tuple[int, int],
    kernel: tuple[int, int],
    stride: tuple[int, int],
    pads: tuple[int, int, int, int],
    out: tuple[int, int],
) -> list[dict]:
    """The target's own ways to place ``out`` windows starting at (-top, -left): argument changes for the layer.

    A max pooling (padding = -inf) and an average pooling whose divisor counts real elements only
    are fixed by where their windows start and how many there are; padding past the last window
    is irrelevant. So each framework's forms are tried until one places the same windows.
    """
    top, left = pads[0], pads[2]
    axes = list(zip(hw, kernel, stride, (top, left), strict=True))
    forms: list[dict] = []
    if target.pool_padding == "symmetric" and _within_limit(target, kernel, axes):
        for ceil in (False, True) if target.ceil_mode != "none" else (False,):
            drop = target.ceil_mode == "drops_overhang"
            if tuple(_windows(n, k, s, p, p, ceil, drop=drop) for n, k, s, p in axes) == out:
                forms.append({"padding": (top, top, left, left), "ceil_mode": ceil})
    if target.pool_padding == "explicit":  # explicit (asymmetric) pads, no ceil-mode overhang window
        bottom, right = (max(0, (o - 1) * s + k - n - p) for o, (n, k, s, p) in zip(out, axes, strict=True))
        if (
            tuple(_windows(n, k, s, p, after, False) for (n, k, s, p), after in zip(axes, (bottom, right), strict=True))
            == out
        ):
            forms.append({"padding": (top, bottom, left, right), "ceil_mode": False})
    if target.pool_padding == "valid_or_same":
        if (top, left) == (0, 0) and tuple(_windows(n, k, s, 0, 0, False) for n, k, s, _ in axes) == out:
            forms.append({"padding": NO_PADDING, "ceil_mode": False})
        same = explicit_padding("same", hw, kernel, stride, (1, 1))
        if (same[0], same[2]) == (top, left) and tuple(
            math.ceil(n / s) for n, s in zip(hw, stride, strict=True)
        ) == out:
            forms.append({"padding": "same", "ceil_mode": False})
    return forms


def _within_limit(target: FrameworkFacts, kernel: tuple[int, int], axes: list[tuple[int, int, int, int]]) -> bool:
    """Whether a symmetric pooling padding (the ``p`` of each (n, k, s, p) axis) is within the target's limit."""
    if target.pool_padding_limit == "half_kernel":
        return all(p <= k // 2 for k, (_, _, _, p) in zip(kernel, axes, strict=True))
    if target.pool_padding_limit == "window_fits":
        return all(k <= n + 2 * p for n, k, _, p in axes)
    return True


def _describe(args: dict) -> str:
    padding = "='same'" if args["padding"] == "same" else f" (top, bottom, left, right) = {args['padding']}"
    return f"padding{padding}{', ceil mode' if args['ceil_mode'] else ''}"


def _plan_pool(
    index: int, layer: Layer, hw: tuple[int, int], target: FrameworkFacts, result: Plan, mode: str
) -> list[Layer]:
    args = layer.args
    if target.pool_padding == "any":
        return [layer]
    kernel, stride, dilation = args["kernel_size"], args["stride"], args.get("dilation", (1, 1))
    if dilation != (1, 1) and not target.dilated_pooling:
        raise cannot(index, layer, "a dilated pooling window", target)
    pads = resolve_padding(layer, hw)
    pool = pool2d_args((1, 1, *hw), kernel, stride, pad_pairs(pads), dilation, bool(args["ceil_mode"]))
    overhang = pool.padded != pads
    counts_padding = mode == "avg" and args["count_include_pad"] and pads != NO_PADDING
    what = "counts as -inf" if mode == "max" else "stays out of the divisor"
    if dilation != (1, 1) or counts_padding:
        # The padding itself counts (or the window is dilated): the padding must be written as it is.
        axes = [(n, k, 0, p) for n, k, p in zip(hw, kernel, (pads[0], pads[2]), strict=True)]
        as_is = target.pool_padding == "symmetric" and _symmetric(pads) and _within_limit(target, kernel, axes)
        keeps_ceil = as_is and target.ceil_mode == "drops_overhang"
        if keeps_ceil or (as_is or target.pool_padding == "explicit") and not overhang:
            # No overhang: the windows fit the padded input, so floor mode places them all (a "keeps_overhang"
            # framework would keep a ceil-mode window that the description drops).
            return [layer.with_args(padding=pads, **({} if keeps_ceil else {"ceil_mode": False}))]
        if mode == "max":
            return _pad_then_pool(index, layer, pool.padded, target, result)
        if not overhang:
            result.steps.append(
                f"layer {index} (avg_pool2d): padding {pads} counts in the divisor; "
                f"{target.display} pools only with 'valid'/'same' here: an explicit zero "
                "padding layer pads first, then a 'valid' pooling divides by the whole window"
            )
            return [Layer("zero_pad2d", {"padding": pads}), layer.with_args(padding=NO_PADDING, ceil_mode=False)]
        raise cannot(
            index,
            layer,
            f"average pooling whose padding {pads} counts in the divisor{' in ceil mode' if args['ceil_mode'] else ''}",
            target,
        )
    original = {"padding": args["padding"], "ceil_mode": bool(args["ceil_mode"])}
    forms = _pool_forms(target, hw, kernel, stride, pads, pool.out_hw)
    if original in forms or {**original, "padding": pads} in forms:
        return [layer.with_args(padding=pads if target.pool_padding != "valid_or_same" else args["padding"])]
    if forms:
        form = forms[0]
        result.size_dependent |= stride != (1, 1)
        result.steps.append(
            f"layer {index} ({layer.kind}): {_describe(original)} on a {hw[0]}x{hw[1]} input places "
            f"{pool.out_hw[0]}x{pool.out_hw[1]} windows from ({-pads[0]}, {-pads[2]}); "
            f"{target.display} places the same windows with {_describe(form)}, where the "
            f"padding and any overhang {what}"
        )
        return [layer.with_args(**form, **({"count_include_pad": False} if mode == "avg" else {}))]
    if mode == "max":
        return _pad_then_pool(index, layer, pool.padded, target, result)
    raise cannot(
        index,
        layer,
        f"{layer.kind} with {_describe(original)} on a {hw[0]}x{hw[1]} input "
        f"({pool.out_hw} windows from ({-pads[0]}, {-pads[2]}), padding that {what})",
        target,
    )


def _pad_then_pool(
    index: int, layer: Layer, padded: tuple[int, int, int, int], target: FrameworkFacts, result: Plan
) -> list[Layer]:
    result.steps.append(
        f"layer {index} (max_pool2d): padding (top, bottom, left, right) = {padded} must count "
        f"as -inf, and {target.display}'s pooling cannot pad that way here: an explicit "
        "-inf padding layer pads first, then the pooling is 'valid'"
    )
    return [
        Layer("constant_pad2d", {"padding": padded, "value": -math.inf}),
        layer.with_args(padding=NO_PADDING, ceil_mode=False),
    ]


def _adaptive_as_pool(index: int, layer: Layer, hw: tuple[int, int], target: FrameworkFacts, result: Plan) -> Layer:
    out = layer.args["output_size"]
    if out == (1, 1):
        result.steps.append(
            f"layer {index} ({layer.name}, adaptive_avg_pool to 1x1): {target.display} has no adaptive "
            "pooling: a global average pooling keeping the 1x1 axes"
        )
        return Layer("global_avg_pool", {"keepdims": True})
    window = (hw[0] // out[0], hw[1] // out[1])
    result.steps.append(
        f"layer {index} ({layer.name}, adaptive_avg_pool to {out[0]}x{out[1]}): {target.display} has no "
        f"adaptive pooling; on a {hw[0]}x{hw[1]} input it is an average pooling with kernel = stride = {window}"
    )
    result.size_dependent = True
    return Layer(
        "avg_pool2d",
        {"kernel_size": window, "stride": window, "padding": NO_PADDING, "ceil_mode": False, "count_include_pad": True},
    )


SUPPORTED = (
    "2-D convolution (grouped, depthwise), transposed convolution, max and average pooling, zero/constant "
    "padding, flatten, dense/linear, batch normalisation, addition, multiplication, concatenation on the "
    "channel axis, global and adaptive average pooling, dropout, ReLU, sigmoid, tanh, ReLU6, leaky ReLU, ELU, "
    "GELU, SiLU, hard-swish, hard-sigmoid, softmax"
)


def unsupported(index: int | str, layer: object, detail: str = "") -> ValueError:
    """The error for a layer (or graph node) port does not know (or an option of it), listing what it supports."""
    what = f" ({detail})" if detail else ""
    where = f"layer {index}" if isinstance(index, int) else f"node {index!r}"
    return ValueError(f"{where} ({layer!r}) is not supported{what}; port supports networks of: {SUPPORTED}")
