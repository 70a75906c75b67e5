"""``d2lconv parity``: the comparison on recorded results, worker failures, the CLI's exit codes, a real run."""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
from rich.console import Console

import d2lconv as dc
from d2lconv import backends, cli
from d2lconv.book import batch_norm as bn
from d2lconv.book import ops as cases
from d2lconv.cli import console
from d2lconv.harness import runner
from d2lconv.harness.parity import compare as parity_compare
from d2lconv.harness.parity import render as parity_render
from d2lconv.harness.parity import run as parity
from d2lconv.harness.parity import sections
from d2lconv.harness.parity.checks import ParityCheck
from d2lconv.harness.parity.checks import modern_nets as modern_checks

# The sections whose checks take seconds (LeNet's training is left to the real run at the end).
FAST = ["6.2", "ops", "6.3-6.5"]
SEGFAULT = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"]


@pytest.fixture(scope="module")
def recorded() -> dict:
    """The NumPy reference's results, computed in-process: what a worker records."""
    return parity.compute_results("numpy", FAST)


def entries_with(reference: dict, **others: dict) -> dict:
    """The ``backends`` part of a report: numpy and ``others`` ok with these results, the rest not installed."""
    entries = {name: parity_compare.entry("not installed") for name in dc.BACKENDS}
    entries["numpy"] = parity_compare.entry("ok", version="1", seconds=0.1, results=reference)
    for name, results in others.items():
        entries[name] = parity_compare.entry("ok", version="1", seconds=0.1, results=results)
    return entries


def cell(report: dict, key: str, name: str) -> dict:
    return next(check for check in report["checks"] if check["name"] == key)["cells"][name]


def fake_worker(tmp_path, results: dict, name: str = "fake") -> list[str]:
    """A worker command that prints recorded results as a real worker does."""
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"backend": name, "version": "0", "results": results}))
    script = (
        "import json, sys\nfrom d2lconv.harness.runner import result_channel\nprint('framework noise')\n"
        "with result_channel() as write:\n    write(json.load(open(sys.argv[1])))\n"
    )
    return [sys.executable, "-c", script, str(path)]


def test_cases_are_named_seeded_data(recorded):
    keys = [case.key for case in cases.CASES]
    assert len(set(keys)) == len(keys)
    assert {case.op for case in cases.CASES} == {"conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d"}
    first, again = cases.CASES[0].inputs(), cases.CASES[0].inputs()
    assert all((a is None and b is None) or (a == b).all() for a, b in zip(first, again, strict=True))
    assert list(recorded) == parity.result_keys(FAST)
    assert not [key for key, value in recorded.items() if parity_compare.is_error(value)]
    assert recorded["figure_6_2_1"] == [[19.0, 25.0], [37.0, 43.0]]
    assert recorded["transposed_edge_map"] == [[0.0] * 5] * 8


def test_identical_and_float32_close_results_agree(recorded):
    close = copy.deepcopy(recorded)
    close["edge_map"][0][1] += 3e-6
    close["learn_builtin"]["losses"][-1] *= 1 + 1e-6
    report = parity.build_report(entries_with(recorded, torch=recorded, paddle=close))
    assert report["exit_code"] == 0 and report["agree"]
    assert [check["name"] for check in report["checks"]] == parity.result_keys(FAST)
    assert set(report["checks"][0]["cells"]) == {"torch", "paddle"}
    assert cell(report, "edge_map", "torch") == {"ok": True, "max_abs_diff": 0.0}
    assert cell(report, "edge_map", "paddle")["max_abs_diff"] == pytest.approx(3e-6)
    assert cell(report, "learn_builtin", "paddle")["max_rel_diff"] == pytest.approx(1e-6, rel=1e-3)


def test_a_differing_value_is_caught(recorded):
    wrong = copy.deepcopy(recorded)
    wrong["conv2d/groups2_p1_bias"][1][3][2][0] += 1e-3
    report = parity.build_report(entries_with(recorded, torch=recorded, mxnet=wrong))
    assert report["exit_code"] == 1 and not report["agree"]
    found = cell(report, "conv2d/groups2_p1_bias", "mxnet")
    assert not found["ok"] and found["max_abs_diff"] == pytest.approx(1e-3, rel=1e-3)
    assert cell(report, "conv2d/groups2_p1_bias", "torch")["ok"]
    assert all(cell(report, key, "mxnet")["ok"] for key in parity.result_keys(FAST) if key != "conv2d/groups2_p1_bias")


def test_a_diverging_loss_curve_is_caught(recorded):
    wrong = copy.deepcopy(recorded)
    wrong["learn_custom"]["losses"][5] *= 1.01
    found = cell(parity.build_report(entries_with(recorded, tensorflow=wrong)), "learn_custom", "tensorflow")
    assert not found["ok"] and found["max_rel_diff"] == pytest.approx(0.01, rel=1e-6)


@pytest.mark.parametrize(
    "change, error",
    [
        (lambda r: r.update(edge_map=r["edge_map"][:-1]), "shape (5, 7), reference (6, 7)"),
        (lambda r: r.update({"conv2d/k3_bias": {"error": "ValueError: boom"}}), "ValueError: boom"),
        (lambda r: r["learn_builtin"].update(bias=0.5), "bias: 0.5 where the reference has None"),
        (lambda r: r.pop("max_pool2d/k2"), "no result"),
    ],
)
def test_a_wrong_shape_a_raising_case_or_a_missing_result_is_an_error_cell(recorded, change, error):
    wrong = copy.deepcopy(recorded)
    change(wrong)
    report = parity.build_report(entries_with(recorded, paddle=wrong))
    found = [check["cells"]["paddle"] for check in report["checks"] if not check["cells"]["paddle"]["ok"]]
    assert report["exit_code"] == 1 and len(found) == 1
    assert found[0]["max_abs_diff"] is None and error in found[0]["error"]


def test_plan_separates_missing_from_not_installed():
    installed = ("numpy", "torch", "paddle")
    assert runner.plan(None, installed) == {
        "numpy": "run",
        "torch": "run",
        "tensorflow": "not installed",
        "mxnet": "not installed",
        "paddle": "run",
        "jax": "not installed",
    }
    assert runner.plan(["tf", "pytorch"], installed, always=("numpy",)) == {
        "numpy": "run",
        "torch": "run",
        "tensorflow": "missing",
        "mxnet": "not installed",
        "paddle": "not requested",
        "jax": "not installed",
    }
    assert runner.plan(["torch"], installed)["numpy"] == "not requested"
    with pytest.raises(backends.BackendError, match="theano"):
        runner.plan(["theano"], installed)


def test_missing_or_crashed_backends_give_exit_2(recorded):
    entries = entries_with(recorded, torch=recorded)
    entries["mxnet"] = parity_compare.entry("missing", 'pip install "d2lconv[mxnet]"')
    report = parity.build_report(entries)
    assert report["exit_code"] == 2 and not report["agree"]
    assert all(check["cells"]["torch"]["ok"] for check in report["checks"])
    entries["mxnet"] = parity_compare.entry("crashed", "killed by signal SIGSEGV", seconds=1.0)
    assert parity.build_report(entries)["exit_code"] == 2


def test_crashed_hung_and_failing_workers_are_reported_and_the_others_still_run(tmp_path, recorded):
    commands = {
        "numpy": fake_worker(tmp_path, recorded, "numpy"),
        "torch": SEGFAULT,
        "tensorflow": [sys.executable, "-c", "import time; time.sleep(60)"],
        "mxnet": fake_worker(tmp_path, recorded, "mxnet"),
        "paddle": [sys.executable, "-c", "import sys; print('noise', file=sys.stderr); sys.exit('paddle broke')"],
        "jax": fake_worker(tmp_path, recorded, "jax"),
    }
    started, finished = [], {}
    report = parity.run_parity(
        None,
        installed=dc.BACKENDS,
        command=commands.__getitem__,
        timeout=10,
        on_start=started.append,
        on_done=finished.__setitem__,
    )
    entries = report["backends"]
    assert list(entries) == list(dc.BACKENDS) and sorted(started) == sorted(dc.BACKENDS)
    assert entries["torch"]["status"] == "crashed"
    assert entries["torch"]["detail"] == f"killed by signal {signal.SIGSEGV.name}"
    assert entries["tensorflow"]["status"] == "timed out"
    assert (entries["paddle"]["status"], entries["paddle"]["detail"]) == ("error", "paddle broke")
    assert entries["mxnet"]["status"] == entries["jax"]["status"] == entries["numpy"]["status"] == "ok"
    assert all(entries[name]["results"] == {} for name in ("torch", "tensorflow", "paddle"))
    assert finished["torch"] == entries["torch"]
    assert report["exit_code"] == 2 and not report["agree"]
    assert [set(check["cells"]) for check in report["checks"]] == [{"mxnet", "jax"}] * len(parity.result_keys(FAST))
    assert all(check["cells"]["mxnet"]["ok"] and check["cells"]["jax"]["ok"] for check in report["checks"])


def test_the_longest_worker_starts_first_and_the_report_keeps_registry_order(tmp_path, recorded):
    """JAX's worker (XLA compiles every case) starts first, beside the others rather than alone at the end."""
    commands = {name: fake_worker(tmp_path, recorded, name) for name in dc.BACKENDS}
    started = []
    report = parity.run_parity(
        None, installed=dc.BACKENDS, command=commands.__getitem__, jobs=1, on_start=started.append
    )
    assert parity.FIRST == ("jax",) and started == ["jax", *(name for name in dc.BACKENDS if name != "jax")]
    assert list(report["backends"]) == list(dc.BACKENDS) and report["exit_code"] == 0


@pytest.mark.parametrize(
    "name, only, flags",
    [
        ("jax", None, None),  # every section: LeNet's and BN-LeNet's training want the optimised code
        ("jax", ["6.2", "ops", "7.5"], "--xla_backend_optimization_level=0"),
        ("jax", ["ops", "6.6-training"], None),
        ("torch", ["ops"], None),
    ],
)
def test_the_jax_worker_compiles_the_fast_sections_at_xla_optimisation_level_0(monkeypatch, name, only, flags):
    for variable in ("XLA_FLAGS", *parity.THREAD_VARIABLES):  # measure sets them; put back afterwards
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(parity.backends, "load_backend", lambda name: dc.load_backend("numpy"))
    monkeypatch.setattr(parity, "compute_results", lambda name, only=None: {})
    parity.measure(name, only)
    assert os.environ.get("XLA_FLAGS") == flags
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp")  # a user's own flags are kept
    parity.measure(name, only)
    assert os.environ["XLA_FLAGS"] == "--xla_dump_to=/tmp"


NOISY_WORKER = (
    "import os, sys\nfrom d2lconv.harness.runner import result_channel\nwith result_channel() as write:\n"
    "    print('framework noise')\n    os.write(1, b'raw noise\\n')\n    os.write(2, b'err noise\\n')\n"
    "    write({'a': [1.0]})\n"
)


def test_run_worker_reads_the_json_from_its_own_fd_whatever_the_worker_prints():
    done = runner.run_worker([sys.executable, "-c", NOISY_WORKER], timeout=60)
    assert (done.status, done.output) == ("ok", {"a": [1.0]})


def test_a_worker_run_by_hand_writes_only_the_json_on_stdout():
    env = {key: value for key, value in os.environ.items() if key != runner.RESULT_FD_VAR}
    done = subprocess.run(
        [sys.executable, "-c", NOISY_WORKER], capture_output=True, text=True, timeout=60, check=True, env=env
    )
    assert json.loads(done.stdout) == {"a": [1.0]}
    assert "framework noise" in done.stderr and "raw noise" in done.stderr


@pytest.fixture
def only(monkeypatch):
    """Pretend that only these backends are installed, and give them these worker commands."""

    def install(commands: dict[str, list[str]]) -> None:
        monkeypatch.setattr(backends, "available_backends", lambda: tuple(commands))
        monkeypatch.setattr(parity, "worker_command", lambda name, sections=None: commands[name])

    return install


def test_cli_json_follows_the_schema(capsys):
    assert cli.main(["parity", "--sections", ",".join(FAST), "--backends", "numpy", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"reference", "tolerance", "backends", "checks", "agree", "exit_code"}
    assert report["tolerance"] == {"rtol": 1e-4, "atol": 1e-5} and report["reference"] == "numpy"
    assert list(report["backends"]) == list(dc.BACKENDS)
    for name, entry in report["backends"].items():
        assert set(entry) == {"status", "detail", "version", "seconds", "results"}
        assert entry["status"] == (
            "ok" if name == "numpy" else "not requested" if name in dc.available_backends() else "not installed"
        )
    assert report["backends"]["numpy"]["results"]["figure_6_2_1"] == [[19.0, 25.0], [37.0, 43.0]]
    assert (report["agree"], report["exit_code"]) == (True, 0)


def test_cli_exit_1_when_a_value_differs(tmp_path, recorded, only, capsys):
    wrong = copy.deepcopy(recorded)
    wrong["max_pool2d/k3_s2_ceil"][0][0][0][0] += 0.5
    only({"numpy": parity.worker_command("numpy", FAST), "torch": fake_worker(tmp_path, wrong)})
    assert cli.main(["parity", "--sections", ",".join(FAST)]) == 1
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.strip().startswith("k3_s2_ceil"))
    assert "0.5" in row
    assert "values differ on torch" in out


def test_cli_exit_2_for_a_crash_and_the_others_still_report(tmp_path, recorded, only, capsys):
    only({"numpy": parity.worker_command("numpy", FAST), "torch": SEGFAULT, "paddle": fake_worker(tmp_path, recorded)})
    assert cli.main(["parity", "--sections", ",".join(FAST)]) == 2
    captured = capsys.readouterr()
    assert "killed by signal SIGSEGV" in captured.out and "torch: crashed" in captured.err
    assert "paddle: ok" in captured.err
    assert "learn_custom" in captured.out and "paddle" in captured.out


def test_cli_a_requested_backend_that_is_missing_fails_at_once_in_one_line(only, monkeypatch, capsys):
    only({"numpy": parity.worker_command("numpy", FAST)})
    monkeypatch.setattr(runner, "run_worker", lambda *a, **k: pytest.fail("a worker ran"))
    for argv in (
        ["--backends", "numpy,mxnet"],
        ["--backends", "mx", "--json"],
        ["--backend", "numpy", "--backend", "mxnet"],
    ):
        assert cli.main(["parity", "--sections", ",".join(FAST), *argv]) == 2
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err == (
            "d2lconv: error: argument --backends: backend 'mxnet' is not installed here: "
            'pip install "d2lconv[mxnet]"\n'
        )


def test_cli_exit_2_for_an_unknown_backend(capsys):
    assert cli.main(["parity", "--backends", "numpy,theano"]) == 2
    assert "unknown backend 'theano'" in capsys.readouterr().err


def test_cli_without_rich_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "rich", None)
    monkeypatch.setitem(sys.modules, "rich.console", None)
    assert cli.main(["parity", "--backends", "numpy"]) == 2
    assert capsys.readouterr().err == console.RICH_HINT + "\n"


@pytest.mark.parity
def test_every_installed_backend_agrees_with_numpy(request):
    """The real thing: ``d2lconv parity`` over the installed backends (or those given with ``--backend``)."""
    chosen = request.config.getoption("backend", default=[])
    # Every section but 6.6-training: test_lenet.py trains each backend to 95 % once (minutes for NumPy).
    command = [
        sys.executable,
        "-m",
        "d2lconv.cli",
        "parity",
        "--json",
        "--sections",
        "6.2,ops,6.3-6.5,6.6,7.1-7.7,7.5,7.5-training,7.6-training,porting",
    ]
    if chosen:
        command += ["--backends", ",".join(chosen)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    report = json.loads(done.stdout)
    problems = {
        name: (entry["status"], entry["detail"])
        for name, entry in report["backends"].items()
        if entry["status"] in runner.FAILED
    }
    differing = {
        check["name"]: {name: cell for name, cell in check["cells"].items() if not cell["ok"]}
        for check in report["checks"]
        if not check.get("informational") and not all(cell["ok"] for cell in check["cells"].values())
    }
    assert (problems, differing) == ({}, {})
    assert done.returncode == report["exit_code"] == 0


# --- the JSON schema, level by level ---------------------------------------------------------------------------------

NUMBER = (int, float)


def assert_plain_result(value) -> None:
    """A recorded result: None, a number, nested lists of numbers, an error, or a dict of those."""
    if isinstance(value, dict):
        if "error" in value:
            assert set(value) == {"error"} and isinstance(value["error"], str)
            return
        for item in value.values():
            assert_plain_result(item)
    elif isinstance(value, list):
        for item in value:
            assert_plain_result(item)
    else:
        assert value is None or isinstance(value, NUMBER), value


def assert_schema(report: dict) -> None:
    """Every key and type of the report documented in docs/api.md (JSON reports)."""
    assert list(report) == ["reference", "tolerance", "backends", "checks", "agree", "exit_code"]
    assert report["reference"] == "numpy"
    assert set(report["tolerance"]) == {"rtol", "atol"}
    assert all(isinstance(value, float) for value in report["tolerance"].values())
    assert list(report["backends"]) == list(dc.BACKENDS)
    statuses = {"ok", "not installed", "not requested", "missing", "crashed", "timed out", "error"}
    for entry in report["backends"].values():
        assert list(entry) == ["status", "detail", "version", "seconds", "results"]
        assert entry["status"] in statuses and isinstance(entry["detail"], str)
        assert entry["version"] is None or isinstance(entry["version"], str)
        assert entry["seconds"] is None or isinstance(entry["seconds"], NUMBER)
        assert isinstance(entry["results"], dict) and (entry["status"] == "ok" or entry["results"] == {})
        for key, value in entry["results"].items():
            assert isinstance(key, str)
            assert_plain_result(value)
    compared = {name for name, entry in report["backends"].items() if entry["status"] == "ok" and name != "numpy"}
    for row in report["checks"]:
        assert set(row) - {"tolerance", "informational"} == {"name", "cells"} and isinstance(row["name"], str)
        if "tolerance" in row:
            assert set(row["tolerance"]) == {"rtol", "atol"} and row["tolerance"] != report["tolerance"]
        assert row.get("informational", True) is True
        assert set(row["cells"]) == compared
        for cell in row["cells"].values():
            assert {"ok", "max_abs_diff"} <= set(cell) <= {"ok", "max_abs_diff", "max_rel_diff", "error"}
            assert isinstance(cell["ok"], bool)
            assert cell["max_abs_diff"] is None or isinstance(cell["max_abs_diff"], float)
            assert isinstance(cell.get("max_rel_diff", 0.0), float) and isinstance(cell.get("error", ""), str)
            assert ("error" in cell) == (cell["max_abs_diff"] is None)
    assert isinstance(report["agree"], bool) and report["exit_code"] in (0, 1, 2)


def test_the_json_report_follows_its_documented_schema_at_every_level(tmp_path, recorded, only, capsys):
    wrong = copy.deepcopy(recorded)
    wrong["edge_map"][0][0] += 1.0
    wrong["conv2d/k3_bias"] = {"error": "ValueError: boom"}
    only(
        {
            "numpy": parity.worker_command("numpy", FAST),
            "torch": fake_worker(tmp_path, recorded, "torch"),
            "paddle": fake_worker(tmp_path, wrong, "paddle"),
            "mxnet": SEGFAULT,
        }
    )
    assert cli.main(["parity", "--sections", ",".join(FAST), "--json"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert_schema(report)
    assert [report["backends"][name]["status"] for name in dc.BACKENDS] == [
        "ok",
        "ok",
        "not installed",
        "crashed",
        "ok",
        "not installed",
    ]
    assert cell(report, "edge_map", "paddle")["max_abs_diff"] == 1.0
    assert "max_rel_diff" in cell(report, "learn_custom", "torch")


def test_per_check_tolerances_and_informational_rows(recorded):
    checks = [
        ParityCheck("figure_6_2_1", lambda: None, rtol=0.0, atol=1e-9),
        ParityCheck("edge_map", lambda: None, informational=True),
    ]
    reference = {"figure_6_2_1": [[19.0, 25.0]], "edge_map": [[1.0, -1.0]]}
    close = {"figure_6_2_1": [[19.0, 25.0 + 1e-7]], "edge_map": [[1.0, -1.0]]}  # within 1e-5 but not 1e-9
    report = parity_compare.build_report(entries_with(reference, torch=close), checks)
    assert report["checks"][0] == {
        "name": "figure_6_2_1",
        "tolerance": {"rtol": 0.0, "atol": 1e-9},
        "cells": {"torch": {"ok": False, "max_abs_diff": pytest.approx(1e-7)}},
    }
    assert report["exit_code"] == 1
    ties = {"figure_6_2_1": [[19.0, 25.0]], "edge_map": [[0.0, -1.0]]}  # an informational row differs
    report = parity_compare.build_report(entries_with(reference, torch=ties), checks)
    assert report["checks"][1]["informational"] is True and not report["checks"][1]["cells"]["torch"]["ok"]
    assert (report["agree"], report["exit_code"]) == (True, 0)
    assert_schema(report)
    console = Console(record=True, width=200)
    parity_render.render(report, console)
    text = console.export_text()
    assert "figure_6_2_1 (rtol 0e+00, atol 1e-9)" in text and "edge_map (informational)" in text
    assert "agree: torch = numpy on 2 checks (exit 0)" in text


def test_an_interrupted_run_leaves_no_worker_behind(tmp_path):
    """Ctrl-C in the parent: the workers lead their own sessions, so the runner kills them itself."""
    pids = tmp_path / "pids"
    sleeper = [
        sys.executable,
        "-c",
        f"import os, time; open({str(pids)!r}, 'a').write(f'{{os.getpid()}}\\n'); time.sleep(60)",
    ]

    def interrupt(name: str) -> None:
        if name == "torch":
            import threading

            threading.Timer(2.0, signal.raise_signal, (signal.SIGINT,)).start()

    with pytest.raises(KeyboardInterrupt):
        runner.run_planned(
            {"numpy": "run", "torch": "run"}, lambda name: sleeper, timeout=60, jobs=2, on_start=interrupt
        )
    for pid in map(int, pids.read_text().split()):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


# --- the defaults a new user runs, and what parity shows while it works --------------------------------------------


def test_cli_runs_the_fast_sections_by_default_and_every_one_with_all(monkeypatch, capsys):
    chosen = []
    monkeypatch.setattr(parity, "run_parity", lambda requested, only=None, **options: chosen.append(only) or {})
    monkeypatch.setattr(console, "run_and_show", lambda args, what, run, *a, **k: run(on_done=None) or None)
    for argv in ([], ["--all"], ["--sections", "6.6-training"]):
        cli.main(["parity", *argv])
    assert chosen == [list(sections.DEFAULT_SECTIONS), None, ["6.6-training"]]
    assert "6.6-training" not in sections.DEFAULT_SECTIONS and set(sections.DEFAULT_SECTIONS) < set(sections.SECTIONS)
    assert cli.main(["parity", "--all", "--sections", "6.2"]) == 2  # one or the other
    assert "not allowed with argument" in capsys.readouterr().err
    assert cli.main(["parity", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    extra = [name for name in sections.SECTIONS if name not in sections.DEFAULT_SECTIONS]
    assert f"--all compare every section, {', '.join(extra)} too" in text
    assert {"7.1-7.7", "7.5-training", "7.6-training"}.isdisjoint(sections.DEFAULT_SECTIONS)
    assert "7.5" in sections.DEFAULT_SECTIONS
    assert f"(default: the fast ones, {', '.join(sections.DEFAULT_SECTIONS)}" in text


def test_cli_shows_each_section_as_it_finishes(capsys):
    assert cli.main(["parity", "--backends", "numpy", "--sections", ",".join(FAST)]) == 0
    err = capsys.readouterr().err  # not a terminal: one plain line per finished section, then the backend's
    lines = [line for line in err.splitlines() if line.startswith("numpy: ")]
    assert [line.split(" ")[2] for line in lines[:-1]] == FAST and lines[-1].startswith("numpy: ok (")
    assert all(re.fullmatch(r"numpy: section \S+ \d+\.\d s", line) for line in lines[:-1])


def test_cli_timeout_names_the_section_the_time_and_the_options(capsys):
    argv = ["parity", "--backends", "numpy", "--sections", "6.2,6.6-training", "--timeout", "5", "--json"]
    assert cli.main(argv) == 2  # training LeNet to its accuracy takes longer, even with NumPy 2 on an idle machine
    entry = json.loads(capsys.readouterr().out)["backends"]["numpy"]
    assert entry["status"] == "timed out"
    assert re.fullmatch(  # on a loaded machine the worker may still be in 6.2
        r"no result after 5 s, in section (6\.6-training \(\d+ s of it; done before it: section 6\.2\)|"
        r"6\.2 \(\d+ s of it\)); give it more time with --timeout S \(now 5\) or leave that section out with "
        r"--sections \(chosen: 6\.2, 6\.6-training\)",
        entry["detail"],
    ), entry["detail"]


def test_the_graph_porting_section_gives_what_numpy_computes_on_each_description(backend, reference):
    """``porting-graphs`` on one backend: its port to NumPy and NumPy's port to it both compute what NumPy's
    own build of each graph computes on the seeded batch (a residual network, a MobileNet block, an Inception
    block, with random BatchNorm statistics)."""
    from d2lconv import porting
    from d2lconv.book.porting_nets import PORTING_NETWORKS
    from d2lconv.harness.parity.checks import porting as porting_checks

    checks = porting_checks.graph_parity_checks()
    assert [check.key for check in checks] == [f"port_{name}" for name in PORTING_NETWORKS]
    for check, make in zip(checks, PORTING_NETWORKS.values(), strict=True):
        net = make(porting.SEED)
        expected = reference.build_network(net).forward(porting.seeded_batch(net.input_shape, net.dtype))
        result = check.compute()
        for field in ("to_numpy", "from_numpy"):
            actual = reference.to_numpy(result[field])
            assert actual.shape == expected.shape, (check.key, field)
            assert abs(actual - expected).max() <= check.atol + check.rtol * abs(expected).max(), (check.key, field)


# --- the modern CNNs' sections (7.1-7.7, 7.5, 7.5-training) ----------------------------------------------------------

BN_DIMS = {"2d": (8, 5), "4d": (4, 3, 5, 6)}


def bn_by_hand(shape: tuple[int, ...], training: bool) -> dict:
    """The book's batch normalisation channel by channel in float64 on the section's seeded inputs."""
    inputs = {name: value.astype(np.float64) for name, value in bn.sample(3, shape).items()}
    X, gamma, beta, mean, var = inputs.values()
    axes = (0, 2, 3) if X.ndim == 4 else (0,)
    at = (1, -1, 1, 1) if X.ndim == 4 else (1, -1)
    mu, sigma2 = (X.mean(axis=axes), X.var(axis=axes)) if training else (mean, var)
    Y = gamma.reshape(at) * (X - mu.reshape(at)) / np.sqrt(sigma2.reshape(at) + 1e-5) + beta.reshape(at)
    if training:  # momentum 0.1 is the new batch's weight
        mean, var = 0.9 * mean + 0.1 * mu, 0.9 * var + 0.1 * sigma2
    return {"Y": Y, "moving_mean": mean, "moving_var": var}


@pytest.fixture(scope="module")
def recorded_bn() -> dict:
    """The NumPy reference's sections 7.5 and 7.5-training, computed in-process."""
    return parity.compute_results("numpy", ["7.5", "7.5-training"])


@pytest.mark.parametrize("dims", list(BN_DIMS))
@pytest.mark.parametrize("mode", ["train", "predict"])
def test_the_batch_norm_rows_are_the_books_definition_and_a_wrong_value_fails(recorded_bn, dims, mode):
    key = f"batch_norm/{mode}_{dims}"
    want = bn_by_hand(BN_DIMS[dims], mode == "train")
    for name, value in want.items():
        np.testing.assert_allclose(recorded_bn[key][name], value, rtol=1e-5, atol=1e-5, err_msg=name)
    assert set(recorded_bn[f"{key}/grad"]) == {"X", "gamma", "beta", "moving_mean", "moving_var"}
    wrong = copy.deepcopy(recorded_bn)
    Y = np.asarray(wrong[key]["Y"])
    Y.flat[7] += 2e-3
    wrong[key]["Y"] = Y.tolist()
    report = parity.build_report(
        entries_with(recorded_bn, torch=recorded_bn, jax=wrong), sections.parity_checks(["7.5"])
    )
    assert cell(report, key, "torch") == {"ok": True, "max_abs_diff": 0.0}
    found = cell(report, key, "jax")
    assert not found["ok"] and found["max_abs_diff"] == pytest.approx(2e-3, rel=1e-3)
    assert report["exit_code"] == 1


def test_the_momentum_conventions_differ_by_more_than_the_tolerance(recorded_bn):
    """The row would catch a tab that takes momentum as the old value's weight (d2l-zh's 0.9 read as 0.1)."""
    inputs = bn.sample(3, BN_DIMS["4d"])
    mu = inputs["X"].astype(np.float64).mean(axis=(0, 2, 3))
    old_weight = 0.1 * inputs["moving_mean"] + 0.9 * mu  # momentum 0.1 read as the weight of the old value
    recorded = np.asarray(recorded_bn["batch_norm/train_4d"]["moving_mean"])
    assert not np.allclose(old_weight, recorded, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(recorded, 0.9 * inputs["moving_mean"] + 0.1 * mu, rtol=1e-5)


def test_the_bn_lenet_rows_hold_fifty_losses_and_four_batch_norms_and_catch_a_drift(recorded_bn):
    losses = recorded_bn["bn_lenet_losses"]["losses"]
    assert len(losses) == 50 and np.mean(losses[-10:]) < 0.5 * losses[0]
    statistics = recorded_bn["bn_lenet_statistics"]
    assert [len(statistics[f"mean{index}"]) for index in range(4)] == [6, 16, 120, 84]
    assert all(min(statistics[f"var{index}"]) > 0 for index in range(4))
    close, drift, off = (copy.deepcopy(recorded_bn) for _ in range(3))
    close["bn_lenet_losses"]["losses"][30] *= 1 + 5e-4
    drift["bn_lenet_losses"]["losses"][30] *= 1 + 2e-3
    off["bn_lenet_statistics"]["var2"][7] *= 1 + 5e-4
    report = parity.build_report(
        entries_with(recorded_bn, torch=close, mxnet=drift, paddle=off), sections.parity_checks(["7.5-training"])
    )
    assert cell(report, "bn_lenet_losses", "torch")["ok"]
    assert not cell(report, "bn_lenet_losses", "mxnet")["ok"]
    assert cell(report, "bn_lenet_losses", "mxnet")["max_rel_diff"] == pytest.approx(2e-3, rel=1e-6)
    assert (
        cell(report, "bn_lenet_statistics", "torch")["ok"] and not cell(report, "bn_lenet_statistics", "paddle")["ok"]
    )


def test_the_batch_norm_sections_agree_with_numpy_on_the_backend(backend, recorded_bn):
    """7.5 and 7.5-training computed in this process after NumPy's (each backend trains its own BN-LeNet)."""
    keys = parity.result_keys(["7.5", "7.5-training"])
    reference = {key: recorded_bn[key] for key in keys}
    results = parity.compute_results(backend.NAME, ["7.5", "7.5-training"])
    chosen = sections.parity_checks(["7.5", "7.5-training"])
    report = parity.build_report(entries_with(reference, **{backend.NAME: results}), chosen)
    assert [row["name"] for row in report["checks"]] == keys
    if backend.NAME != "numpy":
        assert all(row["cells"][backend.NAME]["ok"] for row in report["checks"]), report["checks"]


def test_the_resnet_row_agrees_with_numpy_on_the_backend_and_catches_a_drift(backend):
    """7.6-training: the narrow ResNet's first 10 losses, computed on the backend and on NumPy in this process."""
    reference = parity.compute_results("numpy", ["7.6-training"])
    losses = reference["resnet_losses"]["losses"]
    assert len(losses) == 10 and abs(losses[0] - np.log(10)) < 1.0 and min(losses) > 0
    results = parity.compute_results(backend.NAME, ["7.6-training"])
    drift = copy.deepcopy(reference)
    drift["resnet_losses"]["losses"][9] *= 1 + 2e-3
    report = parity.build_report(
        entries_with(reference, **{backend.NAME: results}), sections.parity_checks(["7.6-training"])
    )
    if backend.NAME != "numpy":
        assert cell(report, "resnet_losses", backend.NAME)["ok"], report["checks"]
    wrong = parity.build_report(entries_with(reference, paddle=drift), sections.parity_checks(["7.6-training"]))
    assert not cell(wrong, "resnet_losses", "paddle")["ok"]
    assert cell(wrong, "resnet_losses", "paddle")["max_rel_diff"] == pytest.approx(2e-3, rel=1e-6)


# The book's printed shapes (d2l-en's cells: ResNet-18 and GoogLeNet on 96x96, NiN on 224x224).
BLOCK_SHAPES = {
    "ResNet18": [(64, 24, 24), (64, 24, 24), (128, 12, 12), (256, 6, 6), (512, 3, 3), (10,)],
    "NiN": [(96, 54, 54), (96, 26, 26), (256, 26, 26), (256, 12, 12), (384, 12, 12), (384, 5, 5), (10, 5, 5)]
    + [(10, 1, 1), (10,)],
}


@pytest.mark.parametrize("name", list(BLOCK_SHAPES))
def test_the_framework_runs_each_block_to_the_books_shape(backend, name):
    """Section 7.1-7.7's row on the backend: the framework's own layers, block by block on the book's input."""
    with dc.use_backend(backend.NAME):
        shapes = modern_checks.block_shapes(name)
    assert [tuple(int(v) for v in shape) for shape in shapes.values()] == BLOCK_SHAPES[name]
    assert list(shapes)[0] == "1 Sequential"


def test_a_block_one_pixel_off_fails_the_shapes_row():
    with dc.use_backend("numpy"):
        recorded = {"shapes/ResNet18": parity._plain(modern_checks.block_shapes("ResNet18"))}
    wrong = copy.deepcopy(recorded)
    wrong["shapes/ResNet18"]["3 Sequential"][1] += 1  # 'same' stride-2 arithmetic gone wrong: 13 for 12
    report = parity.build_report(entries_with(recorded, tensorflow=wrong), sections.parity_checks(["7.1-7.7"]))
    assert [row["name"] for row in report["checks"]] == ["shapes/ResNet18"]
    found = cell(report, "shapes/ResNet18", "tensorflow")
    assert not found["ok"] and found["max_abs_diff"] == 1.0
    assert next(row for row in report["checks"])["tolerance"] == {"rtol": 0.0, "atol": 0.0}
