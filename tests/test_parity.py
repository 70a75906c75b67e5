"""``d2lconv parity``: the comparison on recorded results, worker failures, the CLI's exit codes, a real run."""

from __future__ import annotations

import copy
import json
import signal
import subprocess
import sys

import pytest

import d2lconv as dc
from d2lconv import backends, cases, cli, parity

SEGFAULT = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"]


@pytest.fixture(scope="module")
def recorded() -> dict:
    """The NumPy reference's results, computed in-process: what a worker records."""
    return parity.compute_results("numpy")


def entries_with(reference: dict, **others: dict) -> dict:
    """The ``backends`` part of a report: numpy and ``others`` ok with these results, the rest not installed."""
    entries = {name: parity._entry("not installed") for name in dc.BACKENDS}
    entries["numpy"] = parity._entry("ok", version="1", seconds=0.1, results=reference)
    for name, results in others.items():
        entries[name] = parity._entry("ok", version="1", seconds=0.1, results=results)
    return entries


def cell(report: dict, key: str, name: str) -> dict:
    return next(check for check in report["checks"] if check["name"] == key)["cells"][name]


def fake_worker(tmp_path, results: dict, name: str = "fake") -> list[str]:
    """A worker command that prints recorded results as a real worker does."""
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"backend": name, "version": "0", "results": results}))
    return [sys.executable, "-c", "import sys; print(open(sys.argv[1]).read())", str(path)]


def test_cases_are_named_seeded_data(recorded):
    keys = [case.key for case in cases.CASES]
    assert len(set(keys)) == len(keys)
    assert {case.op for case in cases.CASES} == {"conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d"}
    first, again = cases.CASES[0].inputs(), cases.CASES[0].inputs()
    assert all((a is None and b is None) or (a == b).all() for a, b in zip(first, again, strict=True))
    assert list(recorded) == parity.result_keys()
    assert not [key for key, value in recorded.items() if parity._is_error(value)]
    assert recorded["figure_6_2_1"] == [[19.0, 25.0], [37.0, 43.0]]
    assert recorded["transposed_edge_map"] == [[0.0] * 5] * 8


def test_identical_and_float32_close_results_agree(recorded):
    close = copy.deepcopy(recorded)
    close["edge_map"][0][1] += 3e-6
    close["learn_builtin"]["losses"][-1] *= 1 + 1e-6
    report = parity.build_report(entries_with(recorded, torch=recorded, paddle=close))
    assert report["exit_code"] == 0 and report["agree"]
    assert [check["name"] for check in report["checks"]] == parity.result_keys()
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
    assert all(cell(report, key, "mxnet")["ok"] for key in parity.result_keys() if key != "conv2d/groups2_p1_bias")


def test_a_diverging_loss_curve_is_caught(recorded):
    wrong = copy.deepcopy(recorded)
    wrong["learn_custom"]["losses"][5] *= 1.01
    found = cell(parity.build_report(entries_with(recorded, tensorflow=wrong)), "learn_custom", "tensorflow")
    assert not found["ok"] and found["max_rel_diff"] == pytest.approx(0.01, rel=1e-6)


@pytest.mark.parametrize("change, error", [
    (lambda r: r.update(edge_map=r["edge_map"][:-1]), "shape (5, 7), reference (6, 7)"),
    (lambda r: r.update({"conv2d/k3_bias": {"error": "ValueError: boom"}}), "ValueError: boom"),
    (lambda r: r["learn_builtin"].update(bias=0.5), "bias: 0.5 where the reference has None"),
    (lambda r: r.pop("max_pool2d/k2"), "no result"),
])
def test_a_wrong_shape_a_raising_case_or_a_missing_result_is_an_error_cell(recorded, change, error):
    wrong = copy.deepcopy(recorded)
    change(wrong)
    report = parity.build_report(entries_with(recorded, paddle=wrong))
    found = [check["cells"]["paddle"] for check in report["checks"] if not check["cells"]["paddle"]["ok"]]
    assert report["exit_code"] == 1 and len(found) == 1
    assert found[0]["max_abs_diff"] is None and error in found[0]["error"]


def test_plan_separates_missing_from_not_installed():
    installed = ("numpy", "torch", "paddle")
    assert parity.plan(None, installed) == {"numpy": "run", "torch": "run", "tensorflow": "not installed",
                                             "mxnet": "not installed", "paddle": "run", "jax": "not installed"}
    assert parity.plan(["tf", "pytorch"], installed) == {"numpy": "run", "torch": "run", "tensorflow": "missing",
                                                         "mxnet": "not installed", "paddle": "not requested",
                                                         "jax": "not installed"}
    assert parity.plan(["torch"], installed, always=())["numpy"] == "not requested"
    with pytest.raises(backends.BackendError, match="theano"):
        parity.plan(["theano"], installed)


def test_missing_or_crashed_backends_give_exit_2(recorded):
    entries = entries_with(recorded, torch=recorded)
    entries["mxnet"] = parity._entry("missing", 'pip install "d2lconv[mxnet]"')
    report = parity.build_report(entries)
    assert report["exit_code"] == 2 and not report["agree"]
    assert all(check["cells"]["torch"]["ok"] for check in report["checks"])
    entries["mxnet"] = parity._entry("crashed", "killed by signal SIGSEGV", seconds=1.0)
    assert parity.build_report(entries)["exit_code"] == 2


def test_crashed_hung_and_failing_workers_are_reported_and_the_others_still_run(tmp_path, recorded):
    commands = {
        "numpy": fake_worker(tmp_path, recorded, "numpy"),
        "torch": SEGFAULT,
        "tensorflow": [sys.executable, "-c", "import time; time.sleep(60)"],
        "mxnet": fake_worker(tmp_path, recorded, "mxnet"),
        "paddle": [sys.executable, "-c", "import sys; print('noise', file=sys.stderr); sys.exit('paddle broke')"],
    }
    started, finished = [], {}
    report = parity.run_parity(None, installed=dc.BACKENDS, command=commands.__getitem__, timeout=3,
                               on_start=started.append, on_done=finished.__setitem__)
    entries = report["backends"]
    assert list(entries) == list(dc.BACKENDS) and sorted(started) == sorted(dc.BACKENDS)
    assert entries["torch"]["status"] == "crashed"
    assert entries["torch"]["detail"] == f"killed by signal {signal.SIGSEGV.name}"
    assert entries["tensorflow"]["status"] == "timed out"
    assert (entries["paddle"]["status"], entries["paddle"]["detail"]) == ("error", "paddle broke")
    assert entries["mxnet"]["status"] == "ok" and entries["numpy"]["status"] == "ok"
    assert all(entries[name]["results"] == {} for name in ("torch", "tensorflow", "paddle"))
    assert finished["torch"] == entries["torch"]
    assert report["exit_code"] == 2 and not report["agree"]
    assert [set(check["cells"]) for check in report["checks"]] == [{"mxnet"}] * len(parity.result_keys())
    assert all(check["cells"]["mxnet"]["ok"] for check in report["checks"])


def test_worker_stdout_carries_only_the_json():
    script = ("import os, sys\nfrom d2lconv.parity import json_stdout\nwith json_stdout() as write:\n"
              "    print('framework noise')\n    os.write(1, b'raw noise\\n')\n    write({'a': [1.0]})\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(done.stdout) == {"a": [1.0]}
    assert "framework noise" in done.stderr and "raw noise" in done.stderr


@pytest.fixture
def only(monkeypatch):
    """Pretend that only these backends are installed, and give them these worker commands."""
    def install(commands: dict[str, list[str]]) -> None:
        monkeypatch.setattr(backends, "available_backends", lambda: tuple(commands))
        monkeypatch.setattr(parity, "worker_command", lambda name: commands[name])
    return install


def test_cli_json_follows_the_schema(capsys):
    assert cli.main(["parity", "--backends", "numpy", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"reference", "tolerance", "backends", "checks", "agree", "exit_code"}
    assert report["tolerance"] == {"rtol": 1e-4, "atol": 1e-5} and report["reference"] == "numpy"
    assert list(report["backends"]) == list(dc.BACKENDS)
    for name, entry in report["backends"].items():
        assert set(entry) == {"status", "detail", "version", "seconds", "results"}
        assert entry["status"] == ("ok" if name == "numpy" else
                                   "not requested" if name in dc.available_backends() else "not installed")
    assert report["backends"]["numpy"]["results"]["figure_6_2_1"] == [[19.0, 25.0], [37.0, 43.0]]
    assert (report["agree"], report["exit_code"]) == (True, 0)


def test_cli_exit_1_when_a_value_differs(tmp_path, recorded, only, capsys):
    wrong = copy.deepcopy(recorded)
    wrong["max_pool2d/k3_s2_ceil"][0][0][0][0] += 0.5
    only({"numpy": parity.worker_command("numpy"), "torch": fake_worker(tmp_path, wrong)})
    assert cli.main(["parity"]) == 1
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.strip().startswith("k3_s2_ceil"))
    assert "0.5" in row
    assert "values differ on torch" in out


def test_cli_exit_2_for_a_crash_and_the_others_still_report(tmp_path, recorded, only, capsys):
    only({"numpy": parity.worker_command("numpy"), "torch": SEGFAULT, "paddle": fake_worker(tmp_path, recorded)})
    assert cli.main(["parity"]) == 2
    captured = capsys.readouterr()
    assert "killed by signal SIGSEGV" in captured.out and "torch: crashed" in captured.err
    assert "paddle: ok" in captured.err
    assert "learn_custom" in captured.out and "paddle" in captured.out


def test_cli_exit_2_for_a_requested_backend_that_is_missing(only, capsys):
    only({"numpy": parity.worker_command("numpy")})
    assert cli.main(["parity", "--backends", "numpy,mxnet", "--json"]) == 2
    entry = json.loads(capsys.readouterr().out)["backends"]["mxnet"]
    assert (entry["status"], entry["detail"]) == ("missing", 'pip install "d2lconv[mxnet]"')
    assert cli.main(["parity", "--backends", "numpy,mxnet"]) == 2
    out = capsys.readouterr().out
    assert 'mxnet: pip install "d2lconv[mxnet]"' in out and "FAIL: mxnet missing (exit 2)" in out


def test_cli_exit_2_for_an_unknown_backend(capsys):
    assert cli.main(["parity", "--backends", "numpy,theano"]) == 2
    assert "unknown backend 'theano'" in capsys.readouterr().err


def test_cli_without_rich_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "rich", None)
    monkeypatch.setitem(sys.modules, "rich.console", None)
    assert cli.main(["parity", "--backends", "numpy"]) == 2
    assert capsys.readouterr().err == parity.RICH_HINT + "\n"


@pytest.mark.parity
def test_every_installed_backend_agrees_with_numpy(request):
    """The real thing: ``d2lconv parity`` over the installed backends (or those given with ``--backend``)."""
    chosen = request.config.getoption("backend", default=[])
    command = [sys.executable, "-m", "d2lconv.cli", "parity", "--json"]
    if chosen:
        command += ["--backends", ",".join(chosen)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    report = json.loads(done.stdout)
    problems = {name: (entry["status"], entry["detail"]) for name, entry in report["backends"].items()
                if entry["status"] in parity.FAILED}
    differing = {check["name"]: {name: cell for name, cell in check["cells"].items() if not cell["ok"]}
                 for check in report["checks"] if not all(cell["ok"] for cell in check["cells"].values())}
    assert (problems, differing) == ({}, {})
    assert done.returncode == report["exit_code"] == 0
