"""``python -m d2lconv.harness.worker TOOL NAME OPTIONS``: one tool's worker process, on one backend.

``OPTIONS`` is a JSON object of the tool's ``measure`` keywords (``d2lconv.harness.runner.worker_command``
writes it). The worker writes ``measure``'s result, one JSON object, on the runner's result channel.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from . import runner
from .bench import corr2d, ops, port, train
from .parity import run as parity

TOOLS: dict[str, Callable[..., dict[str, Any]]] = {
    "parity": parity.measure,
    "corr2d": corr2d.measure,
    "ops": ops.measure,
    "port": port.measure,
    "train": train.measure,
}


def main(argv: Sequence[str] | None = None) -> None:
    """Run ``TOOL``'s ``measure`` on backend ``NAME`` with ``OPTIONS`` and write its result."""
    tool, name, options = sys.argv[1:] if argv is None else argv
    with runner.result_channel() as write:
        write(TOOLS[tool](name, **json.loads(options)))


if __name__ == "__main__":
    main()
