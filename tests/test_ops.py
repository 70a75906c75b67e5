"""Beyond the chapter: conv2d, conv_transpose2d and pooling on every backend.

Each op is checked against a float64 direct loop written here (its own padding and
size arithmetic, independent of d2lconv.core.args), against torch.nn.functional where
torch accepts the arguments, and against the shape ``conv_output_size`` predicts.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import d2lconv as dc
from d2lconv import backends
from d2lconv.book import ops as cases
from d2lconv.book.ops import channels_first, channels_last
from d2lconv.harness.parity.checks import ATOL, RTOL
from d2lconv.harness.parity.checks import ops as ops_checks

TOL = {"rtol": 1e-4, "atol": 1e-4}


def in_format(data_format, op, x, *args, **kwargs):
    """``op`` on NCHW ``x`` (and a weight in the NCHW layout, ``args[0]`` if it is an array) in ``data_format``,
    as NumPy: with NHWC the inputs go in transposed and the result comes back transposed to NCHW, so one
    reference checks both formats."""
    if data_format == "NCHW":
        return dc.to_numpy(op(x, *args, **kwargs))
    args = [channels_last(a, "weight") if i == 0 and isinstance(a, np.ndarray) else a for i, a in enumerate(args)]
    return channels_first(dc.to_numpy(op(channels_last(x), *args, data_format=data_format, **kwargs)))


def with_nhwc(count, every=3):
    """(index, data_format) for ``count`` conformance cases: all of them in NCHW, every ``every``-th in NHWC
    (the transposes at a tab's edge do not depend on the case; a third keeps the test time in check)."""
    return [(i, "NCHW") for i in range(count)] + [(i, "NHWC") for i in range(0, count, every)]


# --- float64 references -------------------------------------------------------------------------


def explicit_pads(padding, size, kernel, stride, dilation):
    """(top, bottom, left, right) for every padding form, 'same' as TensorFlow's SAME."""
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        pads = []
        for n, k, s, d in zip(size, kernel, stride, dilation, strict=True):
            total = max((-(-n // s) - 1) * s + d * (k - 1) + 1 - n, 0)
            pads += [total // 2, total - total // 2]
        return tuple(pads)
    if isinstance(padding, int):
        return (padding,) * 4
    if isinstance(padding[0], int):
        return (padding[0], padding[0], padding[1], padding[1])
    return (*padding[0], *padding[1])


def as_pair(value):
    return (value, value) if isinstance(value, int) else tuple(value)


def conv2d_reference(x, w, b, stride, padding, dilation, groups):
    (sh, sw), (dh, dw) = as_pair(stride), as_pair(dilation)
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    top, bottom, left, right = explicit_pads(padding, (h, wd), (kh, kw), (sh, sw), (dh, dw))
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (top, bottom), (left, right)))
    oh = (h + top + bottom - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + left + right - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((n, o, oh, ow))
    og = o // groups
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * sh : i * sh + dh * (kh - 1) + 1 : dh, j * sw : j * sw + dw * (kw - 1) + 1 : dw]
            for g in range(groups):
                y[:, g * og : (g + 1) * og, i, j] = np.einsum(
                    "nchw,ochw->no", patch[:, g * cg : (g + 1) * cg], w[g * og : (g + 1) * og]
                )
    return y if b is None else y + b.reshape(1, -1, 1, 1)


def conv_transpose2d_reference(x, w, b, stride, padding, output_padding, dilation, groups):
    (sh, sw), (dh, dw), (eh, ew) = as_pair(stride), as_pair(dilation), as_pair(output_padding)
    n, c, h, wd = x.shape
    _, og, kh, kw = w.shape
    top, bottom, left, right = explicit_pads(padding, (h, wd), (kh, kw), (sh, sw), (dh, dw))
    full = np.zeros((n, og * groups, (h - 1) * sh + dh * (kh - 1) + 1 + eh, (wd - 1) * sw + dw * (kw - 1) + 1 + ew))
    cg = c // groups
    for i in range(h):
        for j in range(wd):
            for a in range(kh):
                for bb in range(kw):
                    for g in range(groups):
                        full[:, g * og : (g + 1) * og, i * sh + a * dh, j * sw + bb * dw] += (
                            x[:, g * cg : (g + 1) * cg, i, j] @ w[g * cg : (g + 1) * cg, :, a, bb]
                        )
    y = full[:, :, top : full.shape[2] - bottom, left : full.shape[3] - right]
    return y if b is None else y + b.reshape(1, -1, 1, 1)


def pool_reference(x, kernel_size, stride, padding, dilation, ceil_mode, kind, count_include_pad=True):
    (kh, kw) = as_pair(kernel_size)
    (sh, sw) = as_pair(stride) if stride is not None else (kh, kw)
    (dh, dw) = as_pair(dilation)
    n, c, h, w = x.shape
    top, bottom, left, right = explicit_pads(padding, (h, w), (kh, kw), (sh, sw), (dh, dw))

    def windows(size, k, s, d, before, after):
        span = size + before + after - d * (k - 1) - 1
        out = (math.ceil(span / s) if ceil_mode else span // s) + 1
        if ceil_mode and (out - 1) * s >= size + before:
            out -= 1
        starts = [i * s - before for i in range(out)]
        real = [[r for r in range(st, st + d * (k - 1) + 1, d) if 0 <= r < size] for st in starts]
        padded = [len([r for r in range(st, st + d * (k - 1) + 1, d) if -before <= r < size + after]) for st in starts]
        return real, padded

    rows, rows_padded = windows(h, kh, sh, dh, top, bottom)
    cols, cols_padded = windows(w, kw, sw, dw, left, right)
    y = np.zeros((n, c, len(rows), len(cols)))
    for i, r in enumerate(rows):
        for j, q in enumerate(cols):
            window = x[:, :, r][:, :, :, q].astype(np.float64)
            if kind == "max":
                y[:, :, i, j] = window.max(axis=(2, 3))
            else:
                count = rows_padded[i] * cols_padded[j] if count_include_pad else len(r) * len(q)
                y[:, :, i, j] = window.sum(axis=(2, 3)) / count
    return y


# --- the cases ----------------------------------------------------------------------------------

PADDINGS = [0, 1, (1, 2), ((0, 2), (1, 0)), ((2, 1), (0, 3)), "valid", "same"]


def conv2d_cases(count=60, seed=1):
    rng = np.random.default_rng(seed)
    cases = [  # the cases frameworks trap you in, then random ones
        dict(n=1, c=2, o=4, groups=2, h=9, w=8, k=(3, 3), stride=2, padding="same", dilation=2, bias=True),
        dict(n=2, c=3, o=3, groups=3, h=7, w=7, k=(3, 2), stride=1, padding="same", dilation=1, bias=False),
        dict(
            n=1, c=4, o=8, groups=4, h=6, w=9, k=(2, 3), stride=(2, 1), padding=((0, 2), (1, 0)), dilation=1, bias=True
        ),
        dict(n=1, c=1, o=1, groups=1, h=5, w=5, k=(5, 5), stride=3, padding="same", dilation=1, bias=False),
    ]
    while len(cases) < count:
        groups = int(rng.choice([1, 1, 2, 3]))
        c = groups * int(rng.integers(1, 3))
        cases.append(
            dict(
                n=int(rng.integers(1, 3)),
                c=c,
                o=groups * int(rng.integers(1, 3)),
                groups=groups,
                h=int(rng.integers(5, 11)),
                w=int(rng.integers(5, 11)),
                k=(int(rng.integers(1, 4)), int(rng.integers(1, 4))),
                stride=int(rng.integers(1, 4)),
                padding=PADDINGS[int(rng.integers(len(PADDINGS)))],
                dilation=int(rng.integers(1, 3)),
                bias=bool(rng.integers(2)),
            )
        )
    return cases


def make_inputs(case, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((case["n"], case["c"], case["h"], case["w"])).astype(np.float32)
    return rng, x


def torch_accepts_padding(padding, stride):
    return (
        isinstance(padding, int)
        or (isinstance(padding, tuple) and isinstance(padding[0], int))
        or padding == "valid"
        or (padding == "same" and stride == 1)
    )


@pytest.fixture(scope="module")
def torch_functional():
    """torch.nn.functional, the semantic reference, whichever backend is under test."""
    if not backends.is_installed("torch"):
        pytest.skip("torch is not installed: no torch.nn.functional comparison")
    dc.load_backend("torch")
    import torch.nn.functional as F

    return F


def run_torch(F, name, *arrays, **kwargs):
    import torch

    tensors = [None if a is None else torch.from_numpy(np.asarray(a, np.float32)) for a in arrays]
    return getattr(F, name)(*tensors, **kwargs).numpy()


# --- conv2d -------------------------------------------------------------------------------------


@pytest.mark.parametrize("index, data_format", with_nhwc(len(conv2d_cases())))
def test_conv2d(backend, index, data_format):
    case = conv2d_cases()[index]
    rng, x = make_inputs(case, index)
    weight = rng.standard_normal((case["o"], case["c"] // case["groups"], *case["k"])).astype(np.float32)
    bias = rng.standard_normal(case["o"]).astype(np.float32) if case["bias"] else None
    args = dict(stride=case["stride"], padding=case["padding"], dilation=case["dilation"], groups=case["groups"])
    pads = explicit_pads(
        case["padding"], (case["h"], case["w"]), case["k"], as_pair(case["stride"]), as_pair(case["dilation"])
    )
    extent = [case["dilation"] * (k - 1) + 1 for k in case["k"]]
    if case["h"] + pads[0] + pads[1] < extent[0] or case["w"] + pads[2] + pads[3] < extent[1]:
        with pytest.raises(ValueError, match="larger than the padded input"):
            in_format(data_format, dc.conv2d, x, weight, bias, **args)
        return
    y = in_format(data_format, dc.conv2d, x, weight, bias, **args)
    np.testing.assert_allclose(y, conv2d_reference(x, weight, bias, **args), **TOL)
    size = dc.conv_output_size((case["h"], case["w"]), case["k"], case["stride"], case["padding"], case["dilation"])
    assert y.shape == (case["n"], case["o"], *size)


def test_conv2d_equals_torch_functional(backend, torch_functional):
    compared = 0
    for index, case in enumerate(conv2d_cases()):
        if not torch_accepts_padding(case["padding"], case["stride"]):
            continue
        rng, x = make_inputs(case, index)
        weight = rng.standard_normal((case["o"], case["c"] // case["groups"], *case["k"])).astype(np.float32)
        args = dict(stride=case["stride"], padding=case["padding"], dilation=case["dilation"], groups=case["groups"])
        try:
            expected = run_torch(torch_functional, "conv2d", x, weight, None, **args)
        except RuntimeError:  # torch refuses it (kernel larger than the padded input); so do we
            with pytest.raises(ValueError):
                dc.conv2d(x, weight, None, **args)
            continue
        np.testing.assert_allclose(
            dc.to_numpy(dc.conv2d(x, weight, None, **args)), expected, **TOL, err_msg=f"case {case}"
        )
        compared += 1
    assert compared > 20


def test_convolve2d_is_conv2d_with_the_kernel_flipped(backend, rng):
    X, K = rng.standard_normal((7, 9)).astype(np.float32), rng.standard_normal((3, 2)).astype(np.float32)
    flipped = np.ascontiguousarray(K[::-1, ::-1]).reshape(1, 1, 3, 2)
    np.testing.assert_allclose(
        dc.to_numpy(dc.convolve2d(X, K)), dc.to_numpy(dc.conv2d(X.reshape(1, 1, 7, 9), flipped))[0, 0], **TOL
    )
    np.testing.assert_allclose(
        dc.to_numpy(dc.corr2d(X, K)), dc.to_numpy(dc.conv2d(X.reshape(1, 1, 7, 9), K.reshape(1, 1, 3, 2)))[0, 0], **TOL
    )


# --- conv_transpose2d ---------------------------------------------------------------------------


def conv_transpose_cases(count=40, seed=2):
    rng = np.random.default_rng(seed)
    cases = [
        dict(
            n=1, c=2, o=2, groups=1, h=4, w=4, k=(3, 3), stride=2, padding=1, output_padding=1, dilation=1, bias=True
        ),  # FRAMEWORK_NOTES' case
        dict(
            n=2,
            c=4,
            o=6,
            groups=2,
            h=3,
            w=5,
            k=(2, 3),
            stride=(2, 3),
            padding=((1, 0), (0, 2)),
            output_padding=(1, 2),
            dilation=1,
            bias=True,
        ),
        dict(
            n=1, c=3, o=3, groups=3, h=4, w=3, k=(3, 3), stride=1, padding=0, output_padding=1, dilation=2, bias=False
        ),
    ]
    while len(cases) < count:
        groups = int(rng.choice([1, 1, 2]))
        stride, dilation = int(rng.integers(1, 4)), int(rng.integers(1, 3))
        k = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        padding = [0, 1, (1, 0), ((0, 1), (1, 0))][int(rng.integers(4))]
        cases.append(
            dict(
                n=int(rng.integers(1, 3)),
                c=groups * int(rng.integers(1, 3)),
                o=groups * int(rng.integers(1, 3)),
                groups=groups,
                h=int(rng.integers(2, 6)),
                w=int(rng.integers(2, 6)),
                k=k,
                stride=stride,
                padding=padding,
                output_padding=int(rng.integers(0, max(stride, dilation))),
                dilation=dilation,
                bias=bool(rng.integers(2)),
            )
        )
    return cases


def transpose_inputs(case, index):
    rng, x = make_inputs(case, 100 + index)
    weight = rng.standard_normal((case["c"], case["o"] // case["groups"], *case["k"])).astype(np.float32)
    bias = rng.standard_normal(case["o"]).astype(np.float32) if case["bias"] else None
    args = dict(
        stride=case["stride"],
        padding=case["padding"],
        output_padding=case["output_padding"],
        dilation=case["dilation"],
        groups=case["groups"],
    )
    return x, weight, bias, args


@pytest.mark.parametrize("index, data_format", with_nhwc(len(conv_transpose_cases())))
def test_conv_transpose2d(backend, index, data_format):
    x, weight, bias, args = transpose_inputs(conv_transpose_cases()[index], index)
    expected = conv_transpose2d_reference(x, weight, bias, **args)
    if min(expected.shape[2:]) < 1:
        with pytest.raises(ValueError):
            in_format(data_format, dc.conv_transpose2d, x, weight, bias, **args)
        return
    np.testing.assert_allclose(in_format(data_format, dc.conv_transpose2d, x, weight, bias, **args), expected, **TOL)


def test_conv_transpose2d_equals_torch_functional(backend, torch_functional):
    compared = 0
    for index, case in enumerate(conv_transpose_cases()):
        x, weight, bias, args = transpose_inputs(case, index)
        if not torch_accepts_padding(args["padding"], 1):
            continue
        try:
            expected = run_torch(torch_functional, "conv_transpose2d", x, weight, bias, **args)
        except RuntimeError:
            continue
        np.testing.assert_allclose(
            dc.to_numpy(dc.conv_transpose2d(x, weight, bias, **args)), expected, **TOL, err_msg=f"case {case}"
        )
        compared += 1
    assert compared > 15


def test_conv_transpose2d_is_the_adjoint_of_conv2d(backend, rng):
    """<conv2d(x, w), y> == <x, conv_transpose2d(y, w)> for matching arguments."""
    x = rng.standard_normal((2, 4, 9, 8)).astype(np.float32)
    w = rng.standard_normal((6, 2, 3, 2)).astype(np.float32)
    args = dict(stride=2, padding=1, dilation=2, groups=2)
    y = dc.to_numpy(dc.conv2d(x, w, **args))
    probe = rng.standard_normal(y.shape).astype(np.float32)
    back = dc.to_numpy(dc.conv_transpose2d(probe, w, output_padding=(0, 1), **args))
    assert back.shape == x.shape
    np.testing.assert_allclose((y * probe).sum(), (x * back).sum(), rtol=1e-4)


# --- pooling ------------------------------------------------------------------------------------


def pool_cases(count=60, seed=3):
    rng = np.random.default_rng(seed)
    cases = [
        dict(h=5, w=5, k=2, stride=2, padding=1, dilation=1, ceil_mode=True),  # paddle/mxnet keep a window
        dict(h=6, w=7, k=3, stride=2, padding=2, dilation=1, ceil_mode=True),  # padding k-1 (ONNX, not torch)
        dict(h=8, w=8, k=(2, 3), stride=(3, 2), padding=((1, 0), (2, 1)), dilation=1, ceil_mode=False),
        dict(h=9, w=7, k=3, stride=2, padding="same", dilation=2, ceil_mode=False),
        dict(h=7, w=7, k=2, stride=1, padding=1, dilation=3, ceil_mode=True),
    ]
    while len(cases) < count:
        k = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        dilation = int(rng.integers(1, 3))
        padding = [0, 1, (1, 0), ((0, 1), (1, 0)), "valid", "same"][int(rng.integers(6))]
        if isinstance(padding, int) and padding > min(dilation * (v - 1) for v in k):
            padding = 0
        if isinstance(padding, tuple) and (k[0] == 1 or k[1] == 1):
            padding = 0
        cases.append(
            dict(
                h=int(rng.integers(4, 10)),
                w=int(rng.integers(4, 10)),
                k=k,
                stride=[None, 1, 2, 3][int(rng.integers(4))],
                padding=padding,
                dilation=dilation,
                ceil_mode=bool(rng.integers(2)),
            )
        )
    return cases


@pytest.mark.parametrize("index, data_format", with_nhwc(len(pool_cases())))
def test_max_pool2d(backend, index, data_format):
    case = pool_cases()[index]
    x = np.random.default_rng(200 + index).standard_normal((2, 3, case["h"], case["w"])).astype(np.float32)
    args = dict(stride=case["stride"], padding=case["padding"], dilation=case["dilation"], ceil_mode=case["ceil_mode"])
    k = as_pair(case["k"])
    pads = explicit_pads(
        case["padding"], (case["h"], case["w"]), k, as_pair(case["stride"] or k), as_pair(case["dilation"])
    )
    stride = as_pair(case["stride"] or k)
    spans = [
        n + pads[2 * i] + pads[2 * i + 1] - case["dilation"] * (k[i] - 1) - 1
        for i, n in enumerate((case["h"], case["w"]))
    ]
    if any(span < 0 and not (case["ceil_mode"] and span > -s) for span, s in zip(spans, stride, strict=True)):
        with pytest.raises(ValueError, match="larger than the padded input"):
            in_format(data_format, dc.max_pool2d, x, case["k"], **args)
        return
    y = in_format(data_format, dc.max_pool2d, x, case["k"], **args)
    np.testing.assert_allclose(y, pool_reference(x, case["k"], kind="max", **args), **TOL)
    size = dc.conv_output_size(
        (case["h"], case["w"]),
        case["k"],
        case["stride"] or case["k"],
        case["padding"],
        case["dilation"],
        ceil_mode=case["ceil_mode"],
    )
    assert y.shape == (2, 3, *size)


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("index, data_format", with_nhwc(len(pool_cases())))
def test_avg_pool2d(backend, index, data_format, count_include_pad):
    case = dict(pool_cases()[index], dilation=1)
    if case["padding"] == "same" or isinstance(case["padding"], int) and case["padding"] >= min(as_pair(case["k"])):
        case["padding"] = 0
    x = np.random.default_rng(300 + index).standard_normal((1, 2, case["h"], case["w"])).astype(np.float32)
    args = dict(stride=case["stride"], padding=case["padding"], ceil_mode=case["ceil_mode"])
    y = in_format(data_format, dc.avg_pool2d, x, case["k"], count_include_pad=count_include_pad, **args)
    expected = pool_reference(x, case["k"], dilation=1, kind="avg", count_include_pad=count_include_pad, **args)
    np.testing.assert_allclose(y, expected, **TOL)


def test_pooling_equals_torch_functional(backend, torch_functional):
    compared = 0
    for index, case in enumerate(pool_cases()):
        k, stride, padding = as_pair(case["k"]), case["stride"], case["padding"]
        if not isinstance(padding, int) or padding > min(v // 2 for v in k):
            continue  # torch: symmetric padding of at most half the window
        x = np.random.default_rng(index).standard_normal((2, 3, case["h"], case["w"])).astype(np.float32)
        common = dict(kernel_size=k, stride=stride or k, padding=padding, ceil_mode=case["ceil_mode"])
        expected_max = run_torch(torch_functional, "max_pool2d", x, dilation=case["dilation"], **common)
        expected_avg = {
            flag: run_torch(torch_functional, "avg_pool2d", x, count_include_pad=flag, **common)
            for flag in (True, False)
        }
        np.testing.assert_allclose(
            dc.to_numpy(dc.max_pool2d(x, dilation=case["dilation"], **common)),
            expected_max,
            **TOL,
            err_msg=f"max, {case}",
        )
        for flag, expected in expected_avg.items():
            np.testing.assert_allclose(
                dc.to_numpy(dc.avg_pool2d(x, count_include_pad=flag, **common)),
                expected,
                **TOL,
                err_msg=f"avg {flag}, {case}",
            )
        compared += 1
    assert compared > 10


# --- conv_output_size and bad arguments ---------------------------------------------------------


@pytest.mark.parametrize("case", cases.CASES, ids=lambda case: case.key)
def test_cases_in_nhwc_are_the_nchw_results_transposed(backend, case):
    """Every declared case with NHWC inputs (HWIO weights) gives the NCHW result transposed, in float32
    and (to 1e-12) in float64; the NCHW result from the NumPy reference."""
    for dtype, rtol, atol in ((np.float32, RTOL, ATOL), (np.float64, 1e-12, 1e-12)):
        y = ops_checks.run_case(case, dtype, data_format="NHWC")
        with dc.use_backend("numpy"):
            expected = ops_checks.run_case(case, dtype)
        assert y.dtype == dtype and y.shape == expected.shape
        np.testing.assert_allclose(y, expected, rtol=rtol, atol=atol)


def test_conv_output_size_forms():
    assert dc.conv_output_size(7, 3) == 5
    assert dc.conv_output_size(7, 3, stride=2, padding=1) == 4
    assert dc.conv_output_size(7, 3, stride=2, padding="same") == 4
    assert dc.conv_output_size(9, 3, stride=2, padding="same", dilation=2) == 5
    assert dc.conv_output_size((5, 6), (2, 3), stride=(2, 1), padding=((0, 1), (2, 0))) == (3, 6)
    assert dc.conv_output_size(5, 2, stride=2, padding=1, ceil_mode=True) == 3  # the window in the padding dropped
    assert dc.conv_output_size(6, 2, stride=2, ceil_mode=True) == 3
    # an input's 4-D shape: (H, W) read from the axes data_format names
    assert dc.conv_output_size((8, 3, 5, 6), (2, 3), stride=(2, 1), padding=((0, 1), (2, 0))) == (3, 6)
    assert dc.conv_output_size((8, 5, 6, 3), (2, 3), 1, 0, data_format="NHWC") == (4, 4)
    assert dc.conv_output_size((8, 5, 6, 3), 3, data_format="channels_last") == (3, 4)
    with pytest.raises(ValueError, match=r"in_size must be 4-D \(N, H, W, C\), got 3-D"):
        dc.conv_output_size((5, 6, 3), 3, data_format="NHWC")
    with pytest.raises(ValueError, match=r"data_format must be 'NCHW' or 'NHWC'"):
        dc.conv_output_size(7, 3, data_format="HWNC")


X4 = np.ones((1, 4, 6, 6), np.float32)
W4 = np.ones((2, 4, 3, 3), np.float32)
X4_NHWC = np.ones((1, 6, 6, 4), np.float32)
NHWC = dict(data_format="NHWC")


def vjp_of_conv2d(*inputs, **kwargs):
    return dc.vjp("conv2d", *inputs, **kwargs)


def vjp_of_avg_pool2d(*inputs, **kwargs):
    return dc.vjp("avg_pool2d", *inputs, **kwargs)


BAD_LAYOUTS = [
    (dc.conv2d, (X4, W4), dict(data_format="NWHC"), ValueError, r"data_format must be 'NCHW' or 'NHWC' \(or"),
    (dc.conv_transpose2d, (X4, W4), dict(data_format=1), ValueError, r"data_format must be .*, got 1$"),
    (dc.max_pool2d, (X4, 2), dict(data_format="channels-last"), ValueError, r"data_format must be"),
    (dc.avg_pool2d, (X4, 2), dict(data_format="HWC"), ValueError, r"data_format must be"),
    (vjp_of_avg_pool2d, (X4, 2), dict(data_format="NDHWC"), ValueError, r"data_format must be"),
    (dc.conv2d, (X4_NHWC[0], W4), NHWC, ValueError, r"x must be 4-D \(N, H, W, C\), got 3-D shape .*'NHWC'"),
    (dc.max_pool2d, (np.ones((1, 6, 6, 4, 1)), 2), NHWC, ValueError, r"x must be 4-D \(N, H, W, C\), got 5-D"),
    (dc.avg_pool2d, (np.ones((6, 6, 4)), 2), dict(data_format="channels_last"), ValueError, r"x must be 4-D \(N, H"),
    (vjp_of_conv2d, (X4_NHWC, np.ones((3, 3, 4))), NHWC, ValueError, r"weight must be 4-D HWIO \(kh, kw, C_in/g"),
    (
        dc.conv2d,
        (X4_NHWC, W4),
        NHWC,
        ValueError,
        r"weight \(2, 4, 3, 3\) looks like OIHW .* with data_format='NHWC' the weight is HWIO",
    ),
    (
        vjp_of_conv2d,
        (X4, np.ones((3, 3, 4, 2))),
        {},
        ValueError,
        r"weight \(3, 3, 4, 2\) looks like HWIO .* with data_format='NCHW' the weight is OIHW",
    ),
    (
        dc.conv_transpose2d,
        (X4_NHWC, np.ones((4, 2, 3, 3))),
        dict(data_format="channels_last"),
        ValueError,
        r"looks like \(C_in, C_out/groups, kh, kw\), .* the weight is \(kh, kw, C_out/groups, C_in\)",
    ),
]
BAD_OP_ARGS = [
    *BAD_LAYOUTS,
    (dc.conv2d, (X4, W4), dict(stride=0), ValueError, r"stride must be at least 1"),
    (dc.conv2d, (X4, W4), dict(dilation=(1, 0)), ValueError, r"dilation must be at least 1"),
    (dc.conv2d, (X4, W4), dict(padding=-1), ValueError, r"padding must not be negative"),
    (dc.conv2d, (X4, W4), dict(padding="full"), ValueError, r"unknown word 'full'"),
    (dc.conv2d, (X4, W4), dict(padding=(1, 2, 3)), TypeError, r"padding must be an int, a pair"),
    (dc.conv2d, (X4, W4), dict(stride=1.5), TypeError, r"stride must be an int or a pair"),
    (dc.conv2d, (X4, np.ones((2, 3, 3, 3))), {}, ValueError, r"weight has 3 input channels per group but x has 4"),
    (dc.conv2d, (X4, np.ones((3, 2, 3, 3))), dict(groups=2), ValueError, r"groups=2 must divide"),
    (dc.conv2d, (X4, np.ones((2, 4, 3, 3))), dict(groups=3), ValueError, r"groups=3 must divide"),
    (dc.conv2d, (X4, W4, np.ones(3)), {}, ValueError, r"bias must have shape \(2,\)"),
    (dc.conv2d, (X4, np.ones((2, 4, 7, 3))), {}, ValueError, r"larger than the padded input"),
    (dc.conv2d, (X4[0], W4), {}, ValueError, r"x must be 4-D \(N, C, H, W\), got 3-D"),
    (dc.conv2d, (X4, W4), dict(groups=0), ValueError, r"groups must be at least 1"),
    (dc.conv_transpose2d, (X4, np.ones((3, 2, 3, 3))), {}, ValueError, r"weight has 3 input channels but x has 4"),
    (
        dc.conv_transpose2d,
        (X4, np.ones((4, 2, 3, 3))),
        dict(output_padding=2, stride=2),
        ValueError,
        r"output_padding 2 must be smaller than stride or dilation",
    ),
    (dc.conv_transpose2d, (X4, np.ones((4, 2, 3, 3)), np.ones(4)), {}, ValueError, r"bias must have shape \(2,\)"),
    (dc.max_pool2d, (X4, 3), dict(padding=3), ValueError, r"must be smaller than the window"),
    (dc.max_pool2d, (X4, 0), {}, ValueError, r"kernel_size must be at least 1"),
    (dc.max_pool2d, (X4, 7), {}, ValueError, r"larger than the padded input"),
    (dc.avg_pool2d, (X4, 2), dict(padding=((0, 2), (0, 0))), ValueError, r"must be smaller than the window"),
    (dc.avg_pool2d, (X4, 2), dict(stride=-1), ValueError, r"stride must be at least 1"),
    (dc.avg_pool2d, (np.ones((6, 6)), 2), {}, ValueError, r"x must be 4-D"),
    (dc.max_pool2d, (np.ones((1, 1, 0, 4)), 1), dict(padding=0), ValueError, r"positive height and width"),
]


@pytest.mark.parametrize(
    "call, args, kwargs, error, message",
    BAD_OP_ARGS,
    ids=[f"{c.__name__}-{i}" for i, (c, *_) in enumerate(BAD_OP_ARGS)],
)
def test_bad_arguments_are_the_same_error_everywhere(backend, call, args, kwargs, error, message):
    with pytest.raises(error, match=message) as caught:
        call(*args, **kwargs)
    assert type(caught.value) is error
