"""The book's sections as units of ``d2lconv parity``: each has its checks in a module of
``d2lconv.harness.parity.checks`` named like its book module, listed in ``SECTIONS``. A worker runs
every check of every listed section and the results are compared with the NumPy reference, so a new
section adds its module and one line here and touches nothing in the runner.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .checks import (
    ParityCheck,
    batch_norm,
    conv_layer,
    lenet,
    modern_nets,
    ops,
    padding_channels_pooling,
    porting,
    resnet,
)

# Each section's short name (``d2lconv parity --sections``) and the function that declares its checks.
SECTIONS: dict[str, Callable[[], list[ParityCheck]]] = {
    "6.2": conv_layer.parity_checks,
    "ops": ops.parity_checks,
    "6.3-6.5": padding_channels_pooling.parity_checks,
    "6.6": lenet.parity_checks,
    "6.6-training": lenet.training_parity_checks,
    "7.1-7.7": modern_nets.parity_checks,
    "7.5": batch_norm.parity_checks,
    "7.5-training": batch_norm.training_parity_checks,
    "7.6-training": resnet.training_parity_checks,
    "porting": porting.parity_checks,
    "porting-graphs": porting.graph_parity_checks,
}


# What ``d2lconv parity`` runs without ``--sections``: the fast sections (seconds per backend). Training LeNet
# to its accuracy (minutes per backend), porting the graph networks, the modern CNNs' shapes (VGG-11's 129
# million weights and 7 GMAC forward: 20-50 s per backend), BN-LeNet's and the ResNet's first steps (up to
# 10 s each, JAX's compilation most) run only when named or with ``--all``.
DEFAULT_SECTIONS = ("6.2", "ops", "6.3-6.5", "6.6", "7.5", "porting")


def check_sections(names: Sequence[str]) -> list[str]:
    """``names`` as section names of ``SECTIONS``; a ``ValueError`` naming an unknown one and listing them."""
    unknown = [name for name in names if name not in SECTIONS]
    if unknown:
        raise ValueError(f"unknown section {unknown[0]!r}; sections: {', '.join(SECTIONS)}")
    return list(names)


def chosen(only: Sequence[str] | None = None) -> list[str]:
    """The names of every section (or of the sections ``only`` names), in the order of ``SECTIONS``."""
    return [name for name in SECTIONS if only is None or name in check_sections(only)]


def parity_checks(only: Sequence[str] | None = None) -> list[ParityCheck]:
    """The checks of every section (or of the sections ``only`` names), in the order of ``SECTIONS``;
    keys are unique."""
    checks = [check for name in chosen(only) for check in SECTIONS[name]()]
    keys = [check.key for check in checks]
    duplicated = sorted({key for key in keys if keys.count(key) > 1})
    if duplicated:
        raise RuntimeError(f"parity check keys declared twice: {duplicated}")
    return checks
