"""``d2lconv bench --ops``: the batched ops and their gradients against each framework's own call.

For each layer (``NxCxHxW:O:K:P``: a batch of N images with C channels, O output channels,
a KxK kernel, padding P; pooling uses a KxK window, stride 2, padding P) every op —
``conv2d``, ``conv_transpose2d`` (weight (C, O, K, K)), ``max_pool2d``, ``avg_pool2d`` —
is timed forward (``dc.<op>``) and for its gradient (``dc.vjp`` with a random
``grad_output``) against the framework's own call on the same data, which each tab's
``native_op`` prepares (``F.conv2d`` and ``torch.autograd.grad``; ``tf.nn`` on NHWC data
with ``GradientTape``; ``npx.convolution`` and ``autograd``; Paddle's ``F`` and
``paddle.grad``; JAX's ``lax`` and ``jax.vjp``). The NumPy tab has no call of its own:
it is timed against torch's, in the same process, when torch is installed.

``data_formats``: each format is a row of its own. With ``"NHWC"`` d2lconv is called on NHWC data
(HWIO weights, ``data_format="NHWC"``); the native call is the framework's own on the data in its
own layout: NHWC for TensorFlow and JAX, NCHW for the channels-first frameworks (whose users hold
NCHW tensors), so their ratio includes the transposes at the tab's edge.

Each backend runs in its own process (``measure``), one at a time. Ours and the native call alternate
(ABBA) within one run, each sample repeating its call for at least 20 ms; a row's ratio is
the median of the per-pair ratios, so a change of load on the machine hits both sides.
``OMP_NUM_THREADS=1`` gives steadier figures on a busy machine; the report records it
and the load average.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ... import backends
from ...book.ops import channels_first, channels_last
from .. import runner
from .targets import MODES, OPS, ops_targets
from .timing import REPEAT, interleaved

DEFAULT_LAYERS = ("1x3x32x32:8:3:1", "8x64x56x56:64:3:1", "256x1x28x28:6:5:2")
DATA_FORMATS = ("NCHW", "NHWC")
DEFAULT_TIMEOUT = 1800.0


@dataclass(frozen=True)
class Layer:
    """A benchmark layer: input (N, C, H, W), O output channels, a KxK kernel, padding P."""

    spec: str
    x_shape: tuple[int, int, int, int]
    out_channels: int
    kernel: int
    padding: int

    @classmethod
    def parse(cls, spec: str) -> Layer:
        """``"NxCxHxW:O:K:P"`` as a Layer (also the ``--layer`` argparse type); a ``ValueError`` otherwise."""
        try:
            x_text, out_channels, kernel, padding = spec.split(":")
            x_shape = tuple(int(v) for v in x_text.lower().split("x"))
            layer = cls(spec, x_shape, int(out_channels), int(kernel), int(padding))  # type: ignore[arg-type]
        except ValueError:
            raise ValueError(f"must look like NxCxHxW:O:K:P (e.g. 8x64x56x56:64:3:1), got {spec!r}") from None
        if (
            len(x_shape) != 4
            or min(*x_shape, layer.out_channels, layer.kernel) < 1
            or layer.padding < 0
            or 2 * layer.padding >= layer.kernel
            or min(x_shape[2:]) < layer.kernel
        ):
            raise ValueError(
                f"needs positive sizes, an image at least as large as the kernel and a padding "
                f"below half the kernel, got {spec!r}"
            )
        return layer

    def arguments(self, op: str, rng: np.random.Generator) -> tuple[tuple[np.ndarray, ...], dict[str, int]]:
        """The op's float32 inputs and keyword arguments on this layer."""
        n, c, h, w = self.x_shape
        x = rng.standard_normal(self.x_shape, dtype=np.float32)
        if op == "conv2d":
            weight = rng.standard_normal((self.out_channels, c, self.kernel, self.kernel), dtype=np.float32)
            return (x, weight), {"stride": 1, "padding": self.padding}
        if op == "conv_transpose2d":
            weight = rng.standard_normal((c, self.out_channels, self.kernel, self.kernel), dtype=np.float32)
            return (x, weight), {"stride": 1, "padding": self.padding}
        return (x,), {"kernel_size": self.kernel, "stride": 2, "padding": self.padding}


# --- the worker: one backend, in its own process ---------------------------------------------------------------


def _native_tab(name: str) -> Any:
    """The tab whose ``native_op`` is the baseline: the backend's own; torch's for NumPy (None without torch)."""
    if name != "numpy":
        return backends.load_backend(name)
    return backends.load_backend("torch") if backends.is_installed("torch") else None


def measure(
    name: str, layers: Sequence[str], repeat: int = REPEAT, data_formats: Sequence[str] = ("NCHW",)
) -> dict[str, Any]:
    """Time every op forward and for its gradient, ours and native, on every layer (``NxCxHxW:O:K:P``)
    in every data format; errors are recorded."""
    import d2lconv as dc

    dc.set_backend(name)
    tab, native_tab = backends.load_backend(name), _native_tab(name)
    rng = np.random.default_rng(0)
    rows = []
    for layer, data_format, op in ((Layer.parse(s), f, op) for s in layers for f in data_formats for op in OPS):
        native_arrays, native_kwargs = layer.arguments(op, rng)
        # The native call takes the NCHW arrays (its tab converts them to its own layout once).
        arrays: tuple[Any, ...] = native_arrays
        kwargs: dict[str, Any] = dict(native_kwargs)
        if data_format == "NHWC":
            arrays = tuple(channels_last(a, name) for a, name in zip(arrays, ("x", "weight"), strict=False))
            kwargs["data_format"] = "NHWC"
        inputs = tuple(tab.tensor(a) for a in arrays)
        grad = rng.standard_normal(tab.to_numpy(getattr(dc, op)(*inputs, **kwargs)).shape, dtype=np.float32)
        native_grad = channels_first(grad) if data_format == "NHWC" else grad
        for mode in MODES:
            row: dict[str, Any] = {
                "layer": layer.spec,
                "data_format": data_format,
                "op": op,
                "mode": mode,
                "ours_ms": None,
                "native_ms": None,
                "ratio": None,
                "overhead_us": None,
                "error": None,
            }
            try:
                if mode == "forward":
                    ours = functools.partial(getattr(dc, op), *inputs, **kwargs)
                else:
                    ours = functools.partial(dc.vjp, op, *inputs, grad_output=tab.tensor(grad), **kwargs)
                native = None
                if native_tab is not None:
                    native_inputs = tuple(native_tab.tensor(a) for a in native_arrays)
                    native_output = None if mode == "forward" else native_tab.tensor(np.ascontiguousarray(native_grad))
                    native = native_tab.native_op(op, native_inputs, native_kwargs, native_output, data_format)
                row.update(interleaved(ours, native, repeat))
            except Exception as error:  # recorded: the other rows still count
                row["error"] = f"{type(error).__name__}: {error}"
            rows.append(row)
    version = str(tab.FRAMEWORK.__version__)
    if native_tab is not None and native_tab is not tab:
        version += f" (torch {native_tab.FRAMEWORK.__version__})"
    return {"backend": name, "version": version, "baseline": tab.ops.NATIVE_CALLS, "rows": rows}


def run_ops_bench(
    requested: Sequence[str] | None = None,
    layers: Sequence[Layer] = (),
    repeat: int = REPEAT,
    timeout: float = DEFAULT_TIMEOUT,
    data_formats: Sequence[str] = ("NCHW",),
    on_start: Callable[[str], None] | None = None,
    on_done: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Measure each planned backend in its own worker, one at a time (two would share the cores): the report."""
    layers = list(layers) or [Layer.parse(spec) for spec in DEFAULT_LAYERS]

    def fields(name: str, output: dict[str, Any] | None) -> dict[str, Any]:
        output = output or {}
        return {"baseline": output.get("baseline", ""), "rows": output.get("rows", [])}

    specs = [layer.spec for layer in layers]
    entries = runner.run_backends(
        requested,
        lambda name: runner.worker_command("ops", name, layers=specs, repeat=repeat, data_formats=list(data_formats)),
        fields,
        timeout,
        on_start=on_start,
        on_done=on_done,
    )
    return {
        "config": {
            "layers": [asdict(layer) for layer in layers],
            "ops": list(OPS),
            "modes": list(MODES),
            "repeat": repeat,
            "data_formats": list(data_formats),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "load_average": list(os.getloadavg()),
        },
        "backends": entries,
        "targets": ops_targets(entries),
        "exit_code": runner.exit_code(entries),
    }
