"""The README and docs/api.md: every command they show is one the CLI accepts, CI runs the README's test
command, the install instructions say which torch build pip takes, and the API reference stands alone."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

import d2lconv as dc
from d2lconv import cli

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
API = (ROOT / "docs" / "api.md").read_text()
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def commands(text: str) -> list[list[str]]:
    """Every ``d2lconv ...`` command of the bash blocks, as argv after ``d2lconv``, comments and env dropped."""
    found = []
    for block in blocks(text, "bash"):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
                words = words[1:]
            if words[:1] == ["d2lconv"]:
                found.append(words[1:])
    return found


def test_every_d2lconv_command_of_the_readme_parses(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # --plot demo writes into the current folder
    shown = commands(README)
    assert {argv[0] for argv in shown} >= {"demo", "info", "parity", "bench"}
    parser = cli.build_parser()
    for argv in shown:
        args = parser.parse_args(argv)
        assert callable(args.run), argv


def test_the_pick_a_backend_block_needs_only_what_the_install_block_installs():
    install = next(block for block in blocks(README, "bash") if f"--index-url {CPU_INDEX}" in block)
    extras = set(re.search(r'pip install "\.\[([a-z,]+)\]"', install).group(1).split(","))
    assert {"torch", "cli", "bench", "plot"} <= extras  # demo --plot, parity's tables, bench's SciPy column
    later = README[README.index(install) :]
    for argv in commands(later):
        for option in ("--backend", "--backends"):
            if option in argv:
                assert argv[argv.index(option) + 1] in ("numpy", "torch", "pytorch"), argv


def test_the_readme_says_which_torch_build_pip_takes_and_what_tox_downloads():
    assert f"pip install torch --index-url {CPU_INDEX}" in README
    assert "CUDA build" in README and "2.6 GB" in README
    assert f"PIP_EXTRA_INDEX_URL={CPU_INDEX} tox" in README
    for path in ("constraints.txt", "tox.ini"):
        text = (ROOT / path).read_text()
        assert "is the CPU build" not in text and "CUDA" in text, path
    assert "PIP_*" in (ROOT / "tox.ini").read_text()  # what makes PIP_EXTRA_INDEX_URL reach pip


def test_ci_runs_the_readme_test_command_verbatim():
    quick_start = README[README.index("## Quick start") : README.index("## Install a framework")]
    assert "pip install tox && tox" in blocks(quick_start, "bash")[1]
    assert (ROOT / ".ci" / "run").read_text().rstrip().endswith("python -m pip install tox && tox")


def test_the_python_block_uses_only_numpy_and_torch():
    code = blocks(README, "python")[0]
    assert set(re.findall(r'backend\("(\w+)"\)', code)) <= {"numpy", "torch", "pytorch"}


def test_docs_api_is_the_full_reference_and_stands_alone():
    assert "[docs/api.md](docs/api.md)" in README
    for heading in (
        "Backends",
        "Tensors",
        "Gradients",
        "The chapter",
        "6.3 to 6.5",
        "LeNet",
        "Batched operations",
        "Command line",
        "Porting",
    ):
        assert re.search(rf"^## .*{re.escape(heading)}", API, re.M), heading
    for name in dc.__all__:
        assert f"dc.{name}" in API or f"d2lconv.{name}" in API, name
    for text in (API, README):
        assert "shared/" not in text and "API.md" not in text and "issue" not in text.lower()


@pytest.mark.parametrize("argv", [["demo", "--help"], ["parity", "--help"], ["bench", "--help"]])
def test_the_help_the_docs_promise(argv, capsys):
    assert cli.main(argv) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--backend" in text and "exit codes" in text
