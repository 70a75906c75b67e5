"""The PyTorch tab: the book's PyTorch code, trained by torch autograd and ``torch.optim``.

The tab is a package split by section of the book: ``ops`` (tensors and the batched operations every
section builds on), ``conv_layer`` (6.2), ``grads`` (``vjp``, gradients of every op),
``padding_channels_pooling`` (6.3-6.5), ``network`` (a network's reader and writer), ``lenet``
(6.6), ``batch_norm`` (d2l-en 8.5, d2l-zh 7.5). Its names are the same in every tab, in the same
order (``tests/test_registry.py`` checks it).
"""

# ruff: noqa: I001, F401 - the submodules are imported in the book's order, ops first (it imports the
# framework); the names are re-exported, and __all__ is derived from the sections (exported_names)

from .ops import FRAMEWORK, NAME, avg_pool2d, conv2d, conv_transpose2d, max_pool2d, native_op, tensor, to_numpy
from .conv_layer import Conv2D, convolve2d, corr2d, corr2d_loop, corr2d_matmul, learn_kernel, native_corr2d
from .grads import vjp
from .padding_channels_pooling import comp_conv2d, corr2d_multi_in, corr2d_multi_in_out, corr2d_multi_in_out_1x1, pool2d
from .network import build_network, native_weights, network_code, read_network, run_network
from .lenet import LeNet, Trainer, book_train, evaluate_accuracy, layer_summary
from .batch_norm import BatchNorm, batch_norm

import importlib

from .. import exported_names
from . import conv_layer, grads, lenet, network, ops, padding_channels_pooling

batch_norm_section = importlib.import_module(f"{__name__}.batch_norm")  # the name batch_norm is the function
__all__ = exported_names(ops, conv_layer, grads, padding_channels_pooling, network, lenet, batch_norm_section)
