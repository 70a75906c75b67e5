"""The README, the site's pages and docs/api.md: every command they show is one the CLI accepts, every Python
block runs as pasted, CI runs the README's test command, the install instructions say which torch build pip
takes, and the API reference stands alone."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import d2lconv as dc
from d2lconv import backends, cli

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
API = (ROOT / "docs" / "api.md").read_text()
# The site's pages that hold what the README once did (docs/api.md's blocks are signatures, not programs).
PAGES = {
    path.relative_to(ROOT).as_posix(): path.read_text()
    for path in sorted((ROOT / "docs").glob("**/*.md"))
    if path.name != "api.md"
}
INSTALL = PAGES["docs/install.md"]
EVERYWHERE = "\n".join([README, *PAGES.values()])
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


def test_every_d2lconv_command_of_the_readme_and_the_pages_parses(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # --plot demo writes into the current folder
    shown = commands(EVERYWHERE)
    assert {argv[0] for argv in shown} >= {"demo", "info", "parity", "bench"}
    parser = cli.build_parser()
    for argv in shown:
        args = parser.parse_args(argv)
        assert callable(args.run), argv


def test_the_pick_a_backend_block_needs_only_what_the_install_block_installs():
    install = next(block for block in blocks(INSTALL, "bash") if f"--index-url {CPU_INDEX}" in block)
    assert install in README  # the README's install block is the page's
    extras = set(re.search(r'pip install "\.\[([a-z,]+)\]"', install).group(1).split(","))
    assert {"torch", "cli", "bench", "plot"} <= extras  # demo --plot, parity's tables, bench's SciPy column
    later = INSTALL[INSTALL.index(install) :]
    for argv in commands(later):
        for option in ("--backend", "--backends"):
            if option in argv:
                assert argv[argv.index(option) + 1] in ("numpy", "torch", "pytorch"), argv


def test_the_readme_and_the_install_page_say_which_torch_build_pip_takes_and_what_tox_downloads():
    for text in (README, INSTALL):
        assert f"pip install torch --index-url {CPU_INDEX}" in text
        assert "CUDA build" in text
    assert "2.6 GB" in INSTALL and f"PIP_EXTRA_INDEX_URL={CPU_INDEX} tox" in INSTALL
    for path in ("constraints.txt", "tox.ini"):
        text = (ROOT / path).read_text()
        assert "is the CPU build" not in text and "CUDA" in text, path
    assert "PIP_*" in (ROOT / "tox.ini").read_text()  # what makes PIP_EXTRA_INDEX_URL reach pip


def test_ci_runs_the_readme_test_command_verbatim():
    quick_start = README[README.index("## Quick start") : README.index("\n## ", README.index("## Quick start") + 1)]
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
    for text in (API, README, *PAGES.values()):
        assert "shared/" not in text and "API.md" not in text and "issue" not in text.lower()


@pytest.mark.parametrize("command", ["demo", "info", "parity", "bench", "lenet", "train", "port"])
def test_the_help_the_docs_promise(command, capsys):
    """The README: every command's --help lists its exit codes (and the backend names, where it takes them)."""
    assert "each command's options and exit codes" in README
    assert cli.main([command, "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "exit codes" in text
    assert (", ".join(backends.BACKENDS) in text) == (command != "info")


def test_the_readme_states_the_speed_targets_bench_prints(capsys):
    from d2lconv.harness.bench import targets

    header = next(line for line in PAGES["docs/parity.md"].splitlines() if line.startswith("| backend | import |"))
    assert f"target <= {targets.NATIVE_LIMIT:g};" in header and f"target <= {targets.NUMPY_NATIVE_LIMIT:g})" in header
    assert f"target >= {targets.LOOP_LIMIT:g}" in header


def test_the_readme_states_the_section_numbering_once_and_the_notebooks_follow_it():
    assert "numbered as in the book's Chinese edition, [d2l-zh]" in " ".join(README.split())
    assert not re.search(r"\b7\.[2-6]\.\d\b", README)  # no English-edition figure numbers
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        text = path.read_text()
        assert not re.search(r"[Ff]igure 7\.\d|section 7\.\d,", text), path.name


# What each README python block must print, found by a call unique to it (checked on the real output).
PRINTS = {
    "dc.corr2d([[0, 1, 2]": [r"19\.?,\s+25\.?\]", r"10 losses, learned kernel \[\[ ?0\.9\d+ -1\.00\d+\]\]"],
    "dc.vjp(": [r"\(1, 3, 8, 8\) \(4, 3, 3, 3\) \(4,\)", "bias gradient = grad_output summed: True"],
    "dc.train_lenet()": [r"\(1438, 1, 28, 28\) \(359, 1, 28, 28\)", r"1350 steps, test accuracy 0\.9[5-9]\d"],
    'dc.port(net, to="onnx"': [
        r"ONNX Runtime against PyTorch on a seeded batch: \d\.\de-0[6-9]",
        r"the NumPy port against ONNX Runtime on x: \d\.\de-0[6-9]",
    ],
    'dc.port(net, to="tensorflow"': [
        r"Sequential taking NHWC batches",
        r"largest difference from PyTorch on a seeded batch: \d\.\de-0[6-9]",
    ],
}


def needed_backends(block: str) -> list[str]:
    """The frameworks a block's first line says it needs (``# needs ...: pip install ".[torch,tensorflow]"``)."""
    first = block.splitlines()[0]
    assert re.match(r"# (needs .*: pip install \"\.\[[a-z,]+\]\"|NumPy only: pip install \.)", first), (
        f"a Python block must say on its first line what it needs: {first!r}"
    )
    extras = re.search(r'pip install "\.\[([a-z,]+)\]"', first)
    return [name for name in extras.group(1).split(",") if name in backends.BACKENDS] if extras else []


def python_blocks() -> dict[str, str]:
    """Every Python block of the README and the pages, each once, by where it first appears."""
    found: dict[str, str] = {}
    for name, text in {"README.md": README, **PAGES}.items():
        for index, block in enumerate(blocks(text, "python")):
            found.setdefault(block, f"{name}:{index}")
    return {where: block for block, where in found.items()}


def readme_blocks() -> list:
    params = []
    for where, block in python_blocks().items():
        marks = [pytest.mark.slow] if "dc.train_lenet()" in block else []  # the default training: minutes
        needs = "-".join(needed_backends(block)) or "numpy"
        params.append(pytest.param(block, id=f"{where}-{needs}", marks=marks))
    return params


def test_every_python_block_says_what_it_needs_and_what_it_prints():
    code = list(python_blocks().values())
    assert len(code) >= 4
    for block in code:
        needed_backends(block)
        assert "print(" in block, block
        assert [call for call in PRINTS if call in block], f"no expected output for block {block[:80]!r}"


@pytest.mark.parametrize("block", readme_blocks())
def test_readme_python_block_runs_as_pasted_into_a_file(block, tmp_path):
    """Each block, written to a file and run by a fresh Python in an empty folder, prints what it says."""
    for name in needed_backends(block):
        if not backends.is_installed(name):
            pytest.skip(f"the block needs {name}, not installed here ({backends.install_hint(name)})")
    script = tmp_path / "block.py"
    script.write_text(block)
    env = {key: value for key, value in os.environ.items() if key != "D2LCONV_BACKEND"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800
    )
    assert done.returncode == 0, done.stderr[-2000:]
    for call, patterns in PRINTS.items():
        if call in block:
            for pattern in patterns:
                assert re.search(pattern, done.stdout), f"{pattern!r} not in the output:\n{done.stdout}"
    if "save_weights" in block:
        assert (tmp_path / "weights.npz").stat().st_size > 0


def test_the_readme_is_a_landing_page_whose_links_reach_the_site_pages():
    assert len(README.splitlines()) <= 150
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README):
        if "://" not in target:
            assert (ROOT / target).is_file(), target
