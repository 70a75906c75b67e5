"""``d2lconv bench --port``: a ported network runs at the speed of the framework's own implementation.

Three pairs, each timed in its target framework's process, interleaved (``timing.interleaved``), in
inference on 3x224x224 batches of 8 and of 1: ``paddle.vision.models.mobilenet_v2`` ported to Keras
against ``keras.applications.MobileNetV2``; that Keras MobileNetV2 ported to Paddle against Paddle's
own, and to Gluon against the model zoo's ``mobilenetv2_1.0``. Also the seconds ``dc.port`` takes on
``paddle.vision.models.resnet50`` to PyTorch, framework imports excluded (reading, planning, writing,
and port's own check on a seeded batch). Targets: ratio at most 1.10; port under 10 s.

Frameworks collide in one process (Paddle after TensorFlow crashes), so a first round of workers
(``stage="describe"``) reads each source network into d2lconv's description and pickles it to a
temporary folder; the second (``stage="time"``) builds the ported networks from those and times them.

``d2lconv bench --port --json`` prints::

    {"config": {"input": [3, 224, 224], "batches": [8, 1], "repeat": 7},
     "backends": {"tensorflow": {"status": "ok", ..., "pairs": [{"source": "paddle", "target": "tensorflow",
                  "batch": 8, "ours_ms": 101.2, "native_ms": 98.7, "ratio": 1.03}, ...]}, ...},
     "targets": [{"backend": "tensorflow", "ratio": "ported_over_native", "source": "paddle", "batch": 8,
                  "value": 1.03, "limit": 1.1, "met": true}, ..., {"backend": "paddle", "ratio": "port_seconds",
                  "value": 4.2, "limit": 10.0, "met": true}],
     "exit_code": 0}
"""

from __future__ import annotations

import pickle
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ... import backends
from .. import runner
from .targets import port_targets
from .timing import REPEAT, block, interleaved

INPUT = (3, 224, 224)
BATCHES = (8, 1)
SOURCES = ("paddle", "tensorflow")  # the frameworks whose MobileNetV2 is read
PAIRS = (("paddle", "tensorflow"), ("tensorflow", "paddle"), ("tensorflow", "mxnet"))  # (source, target)
DEFAULT_TIMEOUT = 1200.0


def _mobilenet(name: str) -> tuple[Any, Callable[[np.ndarray], Callable[[], Any]]]:
    """The framework's own MobileNetV2 (no pretrained weights), and ``call(x)``: a timed call of it on the
    NCHW batch ``x``, the input converted once, outside the call."""
    if name == "paddle":
        import paddle

        model = paddle.vision.models.mobilenet_v2(pretrained=False)
        model.eval()

        def paddle_call(x: np.ndarray) -> Callable[[], Any]:
            tensor = paddle.to_tensor(x)
            return lambda: _no_grad(paddle, model, tensor)

        return model, paddle_call
    if name == "tensorflow":
        import tensorflow as tf

        model = tf.keras.applications.MobileNetV2(weights=None, input_shape=INPUT[1:] + INPUT[:1])
        return model, lambda x: _keras_call(tf, model, x)
    import mxnet as mx
    from mxnet.gluon.model_zoo import vision

    with mx.util.np_array(False), mx.util.np_shape(False):  # the model zoo's blocks are legacy mx.nd ones
        model = vision.mobilenet_v2_1_0(pretrained=False)
        model.initialize()
        model.hybridize()

    def mxnet_call(x: np.ndarray) -> Callable[[], Any]:
        with mx.util.np_array(False), mx.util.np_shape(False):
            tensor = mx.nd.array(x)

        def call() -> Any:
            with mx.util.np_array(False), mx.util.np_shape(False):
                return model(tensor)

        return call

    return model, mxnet_call


def _no_grad(paddle: Any, model: Any, tensor: Any) -> Any:
    with paddle.no_grad():
        return model(tensor)


def _keras_call(tf: Any, model: Any, x: np.ndarray) -> Callable[[], Any]:
    tensor = tf.constant(np.ascontiguousarray(x.transpose(0, 2, 3, 1)))
    return lambda: model(tensor, training=False)


def _ported_call(name: str, model: Any, x: np.ndarray) -> Callable[[], Any]:
    """A timed call of a model this tab built (NCHW, or NHWC for Keras) on the NCHW batch ``x``."""
    if name == "paddle":
        import paddle

        tensor = paddle.to_tensor(x)
        return lambda: _no_grad(paddle, model, tensor)
    if name == "tensorflow":
        import tensorflow as tf

        return _keras_call(tf, model, x)
    from mxnet import np as mnp

    tensor = mnp.array(x)
    return lambda: model(tensor)


def _port_seconds() -> float:
    """Seconds ``dc.port`` takes on Paddle's ResNet-50 to PyTorch, both frameworks imported beforehand."""
    import paddle
    import torch  # noqa: F401 - imported before the clock starts

    import d2lconv as dc

    dc.load_backend("torch")
    model = paddle.vision.models.resnet50(pretrained=False)
    start = time.perf_counter()
    dc.port(model, to="torch", input_shape=INPUT)
    return time.perf_counter() - start


def measure(name: str, stage: str, folder: str, repeat: int = REPEAT) -> dict[str, Any]:
    """Backend ``name``'s part: ``describe`` pickles its MobileNetV2's description into ``folder``; ``time``
    times every pair it is the target of, and (Paddle) the port of ResNet-50."""
    import d2lconv as dc

    tab = dc.load_backend(name)
    result: dict[str, Any] = {"backend": name, "version": str(tab.FRAMEWORK.__version__)}
    if stage == "describe":
        model, _ = _mobilenet(name)
        start = time.perf_counter()
        net = tab.read_network(model, INPUT)
        result["read_s"] = time.perf_counter() - start
        (Path(folder) / f"{name}.pickle").write_bytes(pickle.dumps(net))
        return result
    native, native_call = _mobilenet(name)
    result["pairs"] = []
    for source, target in PAIRS:
        described = Path(folder) / f"{source}.pickle"
        if target != name or not described.exists():
            continue
        ported = tab.build_network(pickle.loads(described.read_bytes()))
        for batch in BATCHES:
            x = np.random.default_rng(batch).standard_normal((batch, *INPUT)).astype(np.float32)
            ours, theirs = _ported_call(name, ported, x), native_call(x)
            block(ours())
            timing = interleaved(ours, theirs, repeat)
            result["pairs"].append({"source": source, "target": target, "batch": batch} | timing)
    if name == "paddle":
        try:
            result["port_s"] = _port_seconds()
        except (ImportError, ValueError) as error:  # no PyTorch here, or a network port cannot express
            result["port_detail"] = f"{type(error).__name__}: {error}"
    return result


def run_bench(
    requested: Sequence[str] | None = None,
    repeat: int = REPEAT,
    timeout: float = DEFAULT_TIMEOUT,
    on_start: Callable[[str], None] | None = None,
    on_done: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Both rounds of workers, one process at a time: the report."""
    installed = backends.available_backends()
    wanted = [
        name
        for name in ("tensorflow", "mxnet", "paddle")
        if name in installed and requested is None or requested is not None and name in requested
    ]
    with tempfile.TemporaryDirectory(prefix="d2lconv-port-") as folder:
        described = runner.run_backends(
            [name for name in SOURCES if name in installed and any(s == name for s, t in PAIRS if t in wanted)],
            lambda name: runner.worker_command("port", name, stage="describe", folder=folder),
            lambda name, output: {"read_s": (output or {}).get("read_s")},
            timeout,
            on_start=on_start,
        )
        entries = runner.run_backends(
            wanted,
            lambda name: runner.worker_command("port", name, stage="time", folder=folder, repeat=repeat),
            lambda name, output: {key: (output or {}).get(key) for key in ("pairs", "port_s", "port_detail")},
            timeout,
            on_start=on_start,
            on_done=on_done,
        )
    for name, entry in described.items():  # a source that could not be read: its targets say so
        if entry["status"] in runner.FAILED:
            for target in (target for source, target in PAIRS if source == name and target in entries):
                entries[target]["detail"] = f"reading {name}'s MobileNetV2 failed: {entry['detail']}"
    return {
        "config": {"input": list(INPUT), "batches": list(BATCHES), "repeat": repeat},
        "backends": entries,
        "targets": port_targets(entries),
        "exit_code": runner.exit_code(entries),
    }
