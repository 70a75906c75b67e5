"""The command line: demo and info on every backend, one clear line for a bad name."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

import d2lconv as dc
from d2lconv import cli


def test_demo_prints_the_books_numbers(backend, capsys):
    assert cli.main(["demo", "--backend", backend.NAME]) == 0
    out = capsys.readouterr().out
    assert f"backend '{backend.NAME}'" in out
    assert "[[19. 25.]\n [37. 43.]]" in out
    assert " [ 0.  1.  0.  0.  0. -1.  0.]" in out  # a row of the edge map
    assert out.count("[0. 0. 0. 0. 0.]") == 8  # the transposed image: 8x5 zeros
    assert "epoch 10, loss" in out
    learned = out.split("learned kernel ")[1].split(" (")[0]
    np.testing.assert_allclose([float(v) for v in re.findall(r"-?\d+\.\d*", learned)], [1.0, -1.0], atol=0.05)


def test_demo_plot_writes_a_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = tmp_path / "demo.png"
    assert cli.main(["demo", "--plot", str(path)]) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_backend_is_one_line_and_exit_2():
    result = subprocess.run([sys.executable, "-m", "d2lconv.cli", "demo", "--backend", "theano"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "unknown backend 'theano'" in result.stderr and "numpy, torch" in result.stderr


def test_info_lists_every_backend(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    for name in dc.BACKENDS:
        line = next(line for line in out.splitlines() if line.split() and line.split()[0] == name)
        assert ("installed," in line) == (name in dc.available_backends())
        assert ("not installed" in line) == (name not in dc.available_backends())
