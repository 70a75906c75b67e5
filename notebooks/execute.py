"""Execute d2lconv's notebooks in a fresh kernel, and store them with their outputs.

    python notebooks/execute.py                  # run both notebooks, report, write nothing
    python notebooks/execute.py --backend torch  # conv_layer.ipynb on another backend
    python notebooks/execute.py --write          # regenerate the stored outputs
    python notebooks/execute.py --check          # are the stored notebooks current? says what it checked
                                                 #   and what not (exit 1 if stale)

The notebooks are stored WITH their outputs, so that they read well on a code host,
in a normal form that does not change from one run to the next: no timing metadata,
no Python version, execution counts 1, 2, 3, ... ; conv_layer.ipynb is stored as run
on the ``numpy`` backend. Executing a notebook never writes it back unless ``--write``
is given. The test suite (tests/test_notebooks.py) uses the same functions.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import nbformat

HERE = Path(__file__).resolve().parent
# Sections 6.3 to 6.5, batch normalisation (7.5), ResNet (7.6) and the other modern CNNs, one notebook each;
# like conv_layer.ipynb they follow D2LCONV_BACKEND.
SECTION_NOTEBOOKS = (
    "padding_and_strides.ipynb",
    "channels.ipynb",
    "pooling.ipynb",
    "batch_norm.ipynb",
    "resnet.ipynb",
    "modern_cnns.ipynb",
)
NOTEBOOKS = ("conv_layer.ipynb", "compare_backends.ipynb", *SECTION_NOTEBOOKS, "porting.ipynb", "lenet.ipynb")
# The notebook that follows the chapter on D2LCONV_BACKEND; its stored outputs come from this backend.
CHAPTER_NOTEBOOK = "conv_layer.ipynb"
LENET_NOTEBOOK = "lenet.ipynb"
STORED_BACKEND = "numpy"
# Notebooks whose outputs are the same on every run here (compare_backends shows timings).
DETERMINISTIC = ("conv_layer.ipynb", *SECTION_NOTEBOOKS)
CELL_TIMEOUT = 900  # seconds; compare_backends runs every backend's parity worker in one cell
KERNEL_NAME = "python3"
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": KERNEL_NAME}
# Cell metadata that records when or how fast a run went, never stored.
VOLATILE_CELL_METADATA = ("execution", "collapsed", "scrolled", "ExecuteTime")


def kernel_env(backend: str | None) -> dict[str, str]:
    """The kernel's environment: ours, with D2LCONV_BACKEND set (or removed) and inline figures."""
    env = dict(os.environ)
    env.pop("D2LCONV_BACKEND", None)
    if backend is not None:
        env["D2LCONV_BACKEND"] = backend
    env.pop("MPLBACKEND", None)  # e.g. tox's Agg would hide the figures; the kernel picks its inline backend
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # the debugger's frozen-modules warning
    env.setdefault("PYTHONHASHSEED", "0")
    return env


def execute(path: str | Path, backend: str | None = None, timeout: int = CELL_TIMEOUT) -> Any:
    """Run a copy of the notebook at ``path`` in a fresh kernel of THIS Python; return it executed.

    Raises ``nbclient.exceptions.CellExecutionError`` on the first cell that raises.
    The file itself is never written.
    """
    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="d2lconv-kernel-") as kernels:
        # A kernel spec naming sys.executable, so the kernel runs in this environment whatever
        # other "python3" kernels the user has installed.
        write_kernel_spec(os.path.join(kernels, KERNEL_NAME))
        # IPC sockets in the same private directory: local only, and no "running over TCP" warning.
        # A kernel that loaded tensorflow and paddle can take seconds to exit: wait, rather than SIGTERM it.
        km = KernelManager(
            kernel_name=KERNEL_NAME,
            kernel_spec_manager=KernelSpecManager(kernel_dirs=[kernels]),
            transport="ipc",
            ip=os.path.join(kernels, "ipc"),
            shutdown_wait_time=30.0,
        )
        client = NotebookClient(
            nb,
            km=km,
            timeout=timeout,
            kernel_name=KERNEL_NAME,
            allow_errors=False,
            record_timing=False,
            resources={"metadata": {"path": str(path.parent)}},
        )
        try:
            # cleanup_kc: shut the kernel down at the end (nbclient keeps a kernel it did not start alive).
            client.execute(env=kernel_env(backend), cleanup_kc=True)
        finally:
            if km.has_kernel:
                km.shutdown_kernel(now=True)
    return nb


def normalise(nb: Any) -> Any:
    """The stored form of an executed notebook: outputs kept, everything run-dependent dropped."""
    nb = copy.deepcopy(nb)
    nb.metadata = nbformat.from_dict({"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}})
    count = 0
    for cell in nb.cells:
        for key in VOLATILE_CELL_METADATA:
            cell.metadata.pop(key, None)
        if cell.cell_type != "code":
            continue
        count += 1
        cell.execution_count = count if cell.outputs or cell.get("execution_count") else None
        for output in cell.outputs:
            output.pop("transient", None)
            if "execution_count" in output:
                output["execution_count"] = cell.execution_count
    nb.nbformat, nb.nbformat_minor = 4, 5
    return nb


def comparable(nb: Any) -> list[tuple[str, list[tuple[str, ...]]]]:
    """Each code cell's id with its outputs as (kind, text...) tuples: text as printed, images by type only.

    Two runs in one environment give equal lists; a changed number or a vanished figure does not.
    """
    cells = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        outputs = []
        for output in cell.outputs:
            if output.output_type == "stream":
                outputs.append((output.name, output.text))
            elif output.output_type in ("display_data", "execute_result"):
                data = output.get("data", {})
                outputs.append(
                    tuple(
                        [output.output_type, *sorted(data)]
                        + [data[kind] for kind in ("text/plain", "text/markdown") if kind in data]
                    )
                )
            else:
                outputs.append((output.output_type, output.get("ename", ""), output.get("evalue", "")))
        cells.append((cell.get("id", ""), _merge_streams(outputs)))
    return cells


def cell_text(nb: Any, cell_id: str) -> str:
    """All text a cell printed or displayed (streams, text/plain, text/markdown), joined."""
    for cell in nb.cells:
        if cell.get("id") == cell_id:
            parts = []
            for output in cell.get("outputs", []):
                if output.output_type == "stream":
                    parts.append(output.text)
                for kind in ("text/plain", "text/markdown"):
                    if kind in output.get("data", {}):
                        parts.append(output.data[kind])
            return "\n".join(parts)
    raise KeyError(f"no cell with id {cell_id!r}")


def images(nb: Any, cell_id: str | None = None) -> list[str]:
    """The base64 PNGs a notebook (or one of its cells) displays."""
    return [
        output.data["image/png"]
        for cell in nb.cells
        if cell_id in (None, cell.get("id"))
        for output in cell.get("outputs", [])
        if "image/png" in output.get("data", {})
    ]


def _merge_streams(outputs: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """Join consecutive outputs of one stream: how the kernel splits printed text varies between runs."""
    merged: list[tuple[str, ...]] = []
    for output in outputs:
        if merged and output[0] in ("stdout", "stderr") and merged[-1][0] == output[0]:
            merged[-1] = (output[0], merged[-1][1] + output[1])
        else:
            merged.append(output)
    return merged


def _backend_for(name: str, backend: str | None) -> str | None:
    """The backend a notebook runs on: the chapter's notebooks follow ``backend`` (stored from NumPy's run);
    lenet.ipynb trains on ``backend`` if given, else compares every installed backend (as stored)."""
    if name == LENET_NOTEBOOK:
        return backend
    return (backend or STORED_BACKEND) if name in (CHAPTER_NOTEBOOK, *SECTION_NOTEBOOKS) else None


def _installed_backends() -> str:
    """The backends a notebook that runs ``d2lconv parity`` compares here, and those it cannot."""
    from d2lconv import backends
    from d2lconv.harness import runner

    decisions = runner.plan(None, backends.available_backends())
    absent = [name for name, decision in decisions.items() if decision != "run"]
    return ", ".join(runner.to_run(decisions)) + (f" (not installed here: {', '.join(absent)})" if absent else "")


def check_stored(path: Path, executed: Any) -> list[str]:
    """Why the stored notebook at ``path`` is stale compared with a fresh run (empty: it is not)."""
    stored = nbformat.read(path, as_version=4)
    problems = []
    if normalise(stored) != stored:
        problems.append("not stored in normal form (run metadata, execution counts or kernel spec differ)")
    if path.name in DETERMINISTIC:
        fresh = dict(comparable(executed))
        differing = [cell_id for cell_id, outputs in comparable(stored) if fresh.get(cell_id) != outputs]
        if differing or len(fresh) != len(comparable(stored)):
            problems.append(f"stored outputs differ from a fresh run in cells: {', '.join(differing) or 'the list'}")
    return problems


def checked_lines(name: str, executed: Any, backend: str | None) -> list[str]:
    """What ``--check`` verified for notebook ``name``, and what it did not, in plain words."""
    cells = sum(cell.cell_type == "code" for cell in executed.cells)
    ran = f"on {backend}" if backend else f"on the backends installed here: {_installed_backends()}"
    lines = [
        f"checked: all {cells} code cells run without error in a fresh kernel {ran}",
        "checked: the stored file is in normal form",
    ]
    if name in DETERMINISTIC:
        lines.append(
            f"checked: the stored outputs of all {cells} code cells equal this run's "
            f"(numbers as printed, figures by type)"
        )
    else:
        lines.append(
            "NOT checked: the stored outputs (they hold timings and the backends of the machine "
            "that wrote them); the tests compare this run's numbers: pytest tests/test_notebooks.py"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("notebooks", nargs="*", default=list(NOTEBOOKS), help="default: all")
    parser.add_argument(
        "--backend", help=f"backend for {CHAPTER_NOTEBOOK} and the section notebooks (default: {STORED_BACKEND})"
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", action="store_true", help="store the executed notebooks with their outputs")
    action.add_argument(
        "--check",
        action="store_true",
        help="exit 1 if a stored notebook is stale; prints what "
        "was checked (conv_layer: every output; compare_backends: that it runs, not its timings)",
    )
    args = parser.parse_args(argv)
    if args.write and args.backend not in (None, STORED_BACKEND):
        parser.error(f"the stored {CHAPTER_NOTEBOOK} is run on {STORED_BACKEND}; --write takes no --backend")
    stale = []
    for name in args.notebooks:
        path = HERE / Path(name).name
        backend = _backend_for(path.name, args.backend)
        print(f"executing {path.name} " + (f"on {backend}" if backend else f"on {_installed_backends()}"), flush=True)
        executed = normalise(execute(path, backend))
        if args.write:
            nbformat.validate(executed)
            nbformat.write(executed, path)
            print(f"  wrote {path}")
        elif args.check:
            problems = check_stored(path, executed)
            for line in problems or checked_lines(path.name, executed, backend):
                print(f"  {line}")
            if problems:
                stale.append(path.name)
                print(f"  STALE: regenerate with: python notebooks/execute.py --write {path.name}")
            else:
                print("  current, as far as checked above")
        else:
            print(f"  ok: {len(images(executed))} figures")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
