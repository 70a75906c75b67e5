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

Each backend runs in its own process, one at a time. Ours and the native call alternate
(ABBA) within one run, each sample repeating its call for at least 20 ms; a row's ratio is
the median of the per-pair ratios, so a change of load on the machine hits both sides.
``OMP_NUM_THREADS=1`` gives steadier figures on a busy machine; the report records it
and the load average.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ... import backends
from ...cli.args import wrote
from .. import runner
from ..console import has_rich, outcome, progress
from ..runner import FAILED

OPS = ("conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d")
MODES = ("forward", "gradient")
DEFAULT_LAYERS = ("1x3x32x32:8:3:1", "8x64x56x56:64:3:1", "256x1x28x28:6:5:2")
# Targets: ratio to the framework's own call at most 1.3 on the small layer and 1.10 on the ResNet-sized
# one; NumPy (to torch's call) at most 5 on the ResNet-sized layer.
LIMITS = {"1x3x32x32:8:3:1": 1.3, "8x64x56x56:64:3:1": 1.10}
NUMPY_LIMITS = {"8x64x56x56:64:3:1": 5.0}
REPEAT = 7
DEFAULT_TIMEOUT = 1800.0
SAMPLE_SECONDS = 0.02  # each sample repeats its call until it lasts this long
BASELINES = {
    "numpy": "torch's F.<op> and torch.autograd.grad, in the same process",
    "torch": "F.<op>, torch.autograd.grad",
    "tensorflow": "tf.nn.<op> on NHWC data, GradientTape",
    "mxnet": "npx.convolution / deconvolution / pooling, autograd",
    "paddle": "F.<op>, paddle.grad",
    "jax": "lax.conv_general_dilated / reduce_window, jax.vjp (eager)",
}


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


def block(result: Any) -> Any:
    """Wait until ``result`` (a tensor or a tuple of them) is computed: MXNet and JAX run asynchronously."""
    for item in result if isinstance(result, (tuple, list)) else (result,):
        for wait in ("wait_to_read", "block_until_ready"):
            if hasattr(item, wait):
                getattr(item, wait)()
    return result


def _sample(call: Callable[[], Any], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        block(call())
    return (time.perf_counter() - start) / number


def interleaved(ours: Callable[[], Any], native: Callable[[], Any] | None, repeat: int = REPEAT) -> dict[str, Any]:
    """Median ms of ``ours`` and ``native`` from alternating samples (ABBA), and the median per-pair ratio."""
    calls = [ours] if native is None else [ours, native]
    numbers = []
    for call in calls:
        block(call())  # warm-up: caches, lazy initialisation, MXNet's and JAX's compilation
        numbers.append(max(1, math.ceil(SAMPLE_SECONDS / max(_sample(call, 1), 1e-9))))
    samples: list[list[float]] = [[] for _ in calls]
    for index in range(repeat):
        order = range(len(calls)) if index % 2 == 0 else reversed(range(len(calls)))
        for which in order:
            samples[which].append(_sample(calls[which], numbers[which]))
    ours_ms = statistics.median(samples[0]) * 1e3
    if native is None:
        return {"ours_ms": ours_ms, "native_ms": None, "ratio": None, "overhead_us": None}
    native_ms = statistics.median(samples[1]) * 1e3
    return {
        "ours_ms": ours_ms,
        "native_ms": native_ms,
        "ratio": statistics.median(a / b for a, b in zip(samples[0], samples[1], strict=True)),
        "overhead_us": (ours_ms - native_ms) * 1e3,
    }


def _native_tab(name: str) -> Any:
    """The tab whose ``native_op`` is the baseline: the backend's own; torch's for NumPy (None without torch)."""
    if name != "numpy":
        return backends.load_backend(name)
    return backends.load_backend("torch") if backends.is_installed("torch") else None


def measure(name: str, layers: Sequence[Layer], repeat: int = REPEAT) -> dict[str, Any]:
    """Time every op forward and for its gradient, ours and native, on every layer; errors are recorded."""
    import d2lconv as dc

    dc.set_backend(name)
    tab, native_tab = backends.load_backend(name), _native_tab(name)
    rng = np.random.default_rng(0)
    rows = []
    for layer in layers:
        for op in OPS:
            arrays, kwargs = layer.arguments(op, rng)
            inputs = tuple(tab.tensor(a) for a in arrays)
            native_inputs = (
                inputs
                if native_tab is tab
                else tuple(native_tab.tensor(a) for a in arrays)
                if native_tab is not None
                else None
            )
            out_shape = tab.to_numpy(getattr(dc, op)(*inputs, **kwargs)).shape
            grad = rng.standard_normal(out_shape, dtype=np.float32)
            for mode in MODES:
                row: dict[str, Any] = {
                    "layer": layer.spec,
                    "op": op,
                    "mode": mode,
                    "ours_ms": None,
                    "native_ms": None,
                    "ratio": None,
                    "overhead_us": None,
                    "error": None,
                }
                ours: Callable[..., Any]  # called with no arguments; the defaults bind this iteration's values
                try:
                    if mode == "forward":
                        ours = lambda op=op, inputs=inputs, kwargs=kwargs: getattr(dc, op)(*inputs, **kwargs)  # noqa: E731
                        native = None if native_tab is None else native_tab.native_op(op, native_inputs, kwargs)
                    else:
                        grad_output = tab.tensor(grad)
                        ours = lambda op=op, inputs=inputs, kwargs=kwargs, g=grad_output: dc.vjp(  # noqa: E731
                            op, *inputs, grad_output=g, **kwargs
                        )
                        native = (
                            None
                            if native_tab is None
                            else native_tab.native_op(op, native_inputs, kwargs, native_tab.tensor(grad))
                        )
                    row.update(interleaved(ours, native, repeat))
                except Exception as error:  # recorded: the other rows still count
                    row["error"] = f"{type(error).__name__}: {error}"
                rows.append(row)
    version = str(tab.FRAMEWORK.__version__)
    if native_tab is not None and native_tab is not tab:
        version += f" (torch {native_tab.FRAMEWORK.__version__})"
    return {"backend": name, "version": version, "rows": rows}


def worker_command(name: str, layers: Sequence[Layer], repeat: int) -> list[str]:
    """The command that runs backend ``name``'s ``bench --ops`` worker."""
    return [
        sys.executable,
        "-m",
        "d2lconv.harness.bench.ops",
        "--worker",
        name,
        "--repeat",
        str(repeat),
        "--layer",
        *(layer.spec for layer in layers),
    ]


# --- the report ---------------------------------------------------------------------------------------------------


def targets(entries: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every measured ratio that has a target: at most the layer's limit."""
    found = []
    for name, entry in entries.items():
        limits = NUMPY_LIMITS if name == "numpy" else LIMITS
        for row in entry.get("rows", []):
            limit = limits.get(row["layer"])
            if limit is not None and row["ratio"] is not None:
                found.append(
                    {
                        "backend": name,
                        "layer": row["layer"],
                        "op": row["op"],
                        "mode": row["mode"],
                        "value": row["ratio"],
                        "limit": limit,
                        "met": row["ratio"] <= limit,
                    }
                )
    return found


def run_ops_bench(
    requested: Sequence[str] | None = None,
    layers: Sequence[Layer] = (),
    repeat: int = REPEAT,
    timeout: float = DEFAULT_TIMEOUT,
    on_start: Callable[[str], None] | None = None,
    on_done: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Measure each planned backend in its own worker, one at a time (two would share the cores): the report."""
    layers = list(layers) or [Layer.parse(spec) for spec in DEFAULT_LAYERS]
    decisions = runner.plan(requested, backends.available_backends())
    entries: dict[str, dict[str, Any]] = {
        name: {
            "status": decision,
            "detail": runner.skip_detail(decision, name),
            "version": None,
            "seconds": None,
            "baseline": BASELINES.get(name, ""),
            "rows": [],
        }
        for name, decision in decisions.items()
        if decision != "run"
    }

    def done(name: str, run: runner.WorkerRun) -> None:
        output = run.output if isinstance(run.output, dict) else {}
        entries[name] = {
            "status": run.status,
            "detail": run.detail,
            "version": output.get("version"),
            "seconds": run.seconds,
            "baseline": BASELINES.get(name, ""),
            "rows": output.get("rows", []),
        }
        if on_done:
            on_done(name, entries[name])

    runner.run_planned(
        decisions, lambda name: worker_command(name, layers, repeat), timeout, jobs=1, on_start=on_start, on_done=done
    )
    failed = any(entry["status"] in FAILED for entry in entries.values())
    return {
        "config": {
            "layers": [asdict(layer) for layer in layers],
            "ops": list(OPS),
            "modes": list(MODES),
            "repeat": repeat,
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "load_average": list(os.getloadavg()),
        },
        "backends": {name: entries[name] for name in backends.BACKENDS if name in entries},
        "targets": targets(entries),
        "exit_code": 2 if failed else 0,
    }


def ops_command(args: argparse.Namespace) -> int:
    """``d2lconv bench --ops``: measure, then print tables or JSON, and write the plot if asked."""
    layers = args.layer or [Layer.parse(spec) for spec in DEFAULT_LAYERS]
    if not args.json and not has_rich():
        return 2
    names = runner.to_run(runner.plan(args.backends, backends.available_backends()))
    with progress(names, "measuring") as (start, finish):
        report = run_ops_bench(
            args.backends,
            layers,
            args.repeat,
            args.timeout,
            on_start=start,
            on_done=lambda name, entry: finish(name, outcome(entry)),
        )
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        from rich.console import Console

        from .render import render_ops

        render_ops(report, Console(emoji=False))
    if args.plot:
        from .render import plot_ops

        plot_ops(report, args.plot)
        wrote(args.plot)
    return int(report["exit_code"])


def layer_argument(text: str) -> Layer:
    """The argparse type of ``--layer``."""
    try:
        return Layer.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``bench``'s options for ``--ops`` (``--backends``, ``--json``, ``--plot``, ``--repeat``, ``--timeout``
    are shared with the corr2d bench)."""
    parser.add_argument(
        "--ops",
        action="store_true",
        help="time conv2d, conv_transpose2d, max_pool2d and "
        "avg_pool2d, forward and gradient (dc.vjp), against each framework's own call",
    )
    parser.add_argument(
        "--layer",
        type=layer_argument,
        nargs="+",
        metavar="NxCxHxW:O:K:P",
        help=f"with --ops: the layers (default: {' '.join(DEFAULT_LAYERS)})",
    )


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m d2lconv.harness.bench.ops --worker NAME --layer SPEC ...``: the worker process of one backend."""
    parser = argparse.ArgumentParser(prog="python -m d2lconv.harness.bench.ops", description=__doc__.splitlines()[0])
    parser.add_argument("--worker", required=True, metavar="NAME")
    parser.add_argument("--layer", nargs="+", required=True)
    parser.add_argument("--repeat", type=int, default=REPEAT)
    args = parser.parse_args(argv)
    with runner.result_channel() as write:
        write(measure(args.worker, [Layer.parse(spec) for spec in args.layer], args.repeat))


if __name__ == "__main__":
    main()
