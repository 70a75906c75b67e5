"""The Flax tab's network writer and reader: bound flax.linen models <-> d2lconv's ``Network``.

Flax is NHWC. The writer (``network_graph``) makes an ``nn.Sequential`` of the chapter's layers, or a
module class that runs the graph node by node with no transpose inside, and binds it to its variables
(``params`` and ``batch_stats``; mutable, so that a training-mode call updates the running statistics
in place). The reader (``network_read``) reads an ``nn.Sequential`` or a module the writer made back.
Here: the tab's entry points, and running a model on NCHW batches (transposed at the model's edge
only); ``port_checks`` runs it in training mode, node by node, and for one SGD step.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import flax.linen as nn
import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np

from ...core.network import Layer, Network, dense_after_flatten, flatten_permutation, infer_input_shape
from ...core.plan import plan
from .. import FACTS
from .network_graph import flatten, flax_variables, module_source
from .network_read import read_graph_weights, read_sequential_layer
from .ops import NAME, _enable_x64


def _module(net: Network, every_node: bool = False) -> nn.Module:
    """The unbound module ``module_source`` describes; a module class carries its graph (weights left out)."""
    namespace: dict[str, Any] = {"nn": nn, "jnp": jnp, "functools": functools, "flatten": flatten}
    namespace["__name__"] = "ported"  # the class's module: the framework is told from its base, nn.Module
    exec(module_source(net, every_node), namespace)  # the same source network_code shows
    module = namespace["module"]
    if not isinstance(module, nn.Sequential):
        graph = [Layer(layer.kind, dict(layer.args), {}, layer.name, layer.inputs) for layer in net.layers]
        type(module).graph = Network(net.input_shape, graph, net.outputs)
    return module


def _bind(module: nn.Module, net: Network) -> nn.Module:
    with _enable_x64(net.dtype == np.float64):  # float64 weights stay float64 (thread-local switch)
        variables = jax.tree.map(jnp.asarray, flax_variables(net))
    return module.bind(variables, mutable=True)


def build_network(net: Network) -> nn.Module:
    """``net`` as flax.linen (NHWC), bound to its variables: ``model(x)`` runs it in inference mode."""
    planned = plan(net, FACTS[NAME]).network
    return _bind(_module(planned), planned)


def network_code(net: Network) -> str:
    """Source that builds ``net`` the way the book's JAX tab would, and binds it to the weights file."""
    planned = plan(net, FACTS[NAME]).network
    source = module_source(planned)
    x64 = "\njax.config.update('jax_enable_x64', True)  # float64 weights\n" if planned.dtype == np.float64 else ""
    helper = (
        '\n\ndef flatten(x):\n    """(N, H, W, C) -> (N, H*W*C)."""\n    return x.reshape((x.shape[0], -1))\n'
        if "flatten," in source
        else ""
    )
    return (
        "import functools\n\nimport flax.linen as nn\nimport jax\nimport jax.numpy as jnp\nimport numpy as np\n"
        f"{x64}{helper}\n\n{source}"
        "weights = np.load('weights.npz')  # written by ported.save_weights: 'collection/layer/name'\n"
        "variables = {}\n"
        "for key in weights:\n"
        "    collection, layer, name = key.split('/')\n"
        "    variables.setdefault(collection, {}).setdefault(layer, {})[name] = jnp.asarray(weights[key])\n"
        "net = module.bind(variables, mutable=True)\n"
    )


def native_weights(model: nn.Module) -> dict[str, np.ndarray]:
    """The bound variables in Flax's layouts, named ``"collection/layer/name"`` (``params/conv1/kernel``)."""
    return {
        f"{collection}/{layer}/{name}": np.array(value)
        for collection, layers in model.variables.items()
        for layer, arrays in layers.items()
        for name, value in arrays.items()
    }


def save_model(model: nn.Module, folder: Path, stem: str) -> list[Path]:
    """The bound model's variables as ``flax.serialization`` bytes (``flax.serialization.from_bytes`` them
    into the variables of the module ``network_code`` builds)."""
    path = folder / f"{stem}.msgpack"
    path.write_bytes(flax.serialization.to_bytes(model.variables))
    return [path]


def read_network(model: nn.Module, input_shape: tuple[int, ...] | None = None) -> Network:
    """The description of a bound ``nn.Sequential`` or of a module d2lconv's writer made: kernels back to
    OIHW, the dense layer after a flatten back to (C, H, W) columns."""
    if getattr(model, "scope", None) is None:
        raise ValueError("port needs a bound Flax network: module.bind(variables)")
    graph = getattr(type(model), "graph", None)
    if isinstance(model, nn.Sequential):
        described = [read_sequential_layer(index, layer, model.variables) for index, layer in enumerate(model.layers)]
        net = Network(input_shape or infer_input_shape(described), described)
    elif isinstance(graph, Network):
        net = Network(input_shape or graph.input_shape, read_graph_weights(graph, model.variables), graph.outputs)
    else:
        raise ValueError(
            f"port reads a flax.linen nn.Sequential or a module d2lconv wrote; {type(model).__name__}'s "
            "hand-written __call__ is Python code with no layer graph to read (write it as nn.Sequential, "
            "or port the network from the framework it was built in)"
        )
    for index, chw in dense_after_flatten(net).items():
        weight = net.layers[index].weights["weight"]
        restored = np.empty_like(weight)
        restored[:, flatten_permutation(chw)] = weight
        net.layers[index].weights["weight"] = restored
    return net


def _is_float64(model: nn.Module) -> bool:
    return any(np.asarray(leaf).dtype == np.float64 for leaf in jax.tree.leaves(model.variables))


def _nhwc(x: np.ndarray) -> jnp.ndarray:
    x = np.asarray(x)
    return jnp.asarray(np.ascontiguousarray(x.transpose(0, 2, 3, 1) if x.ndim == 4 else x))


def _nchw(y: Any) -> np.ndarray:
    y = np.asarray(y)
    return y.transpose(0, 3, 1, 2) if y.ndim == 4 else y


def run_network(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """The model's output on an NCHW batch (transposed to NHWC and back), as NumPy, in inference mode. The
    forward is compiled once (``jax.jit``), as a Flax user runs a model."""
    module, variables = model.unbind()
    with _enable_x64(_is_float64(model)):
        return _nchw(jax.jit(lambda v, inputs: module.apply(v, inputs))(variables, _nhwc(x)))
