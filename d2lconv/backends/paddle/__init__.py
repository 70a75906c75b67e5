"""The PaddlePaddle tab: the chapter in Paddle's dygraph idiom (``paddle.nn.Layer``, ``F.conv2d``).

The tab is a package split by section of the book: ``ops`` (tensors and the batched
operations every section builds on), ``conv_layer`` (6.2) and ``grads`` (every op's gradient). Its names, listed in
``d2lconv.backends.CONTRACT``, are the same in every tab, in the same order.
"""

from .ops import FRAMEWORK, NAME, avg_pool2d, conv2d, conv_transpose2d, max_pool2d, tensor, to_numpy  # noqa: I001 - ops first: it imports the framework
from .conv_layer import Conv2D, convolve2d, corr2d, corr2d_loop, corr2d_matmul, learn_kernel, native_corr2d
from .grads import vjp
from .network import build_network, native_weights, network_code, read_network, run_network

__all__ = ["NAME", "FRAMEWORK", "tensor", "to_numpy", "corr2d", "corr2d_loop", "convolve2d", "corr2d_matmul",
           "native_corr2d", "Conv2D", "learn_kernel", "conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d",
           "vjp",
           "build_network", "read_network", "network_code", "native_weights", "run_network"]
