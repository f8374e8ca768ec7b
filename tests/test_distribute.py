"""Both paths under tf.distribute: MirroredStrategy on two logical CPUs, and two local workers.

Logical CPUs can only be configured before TensorFlow initialises its devices, and this pytest
process may already have done so: the MirroredStrategy scenarios run together in one fresh
subprocess that prints JSON. The worker scenarios start their own processes anyway, so they run
here; each test marks its workers' environment with a fresh token and then looks through /proc
for any process that still carries it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from fitvstape import distribute
from fitvstape.config import resolve
from fitvstape.distribute import DistributedError, run_workers

REPO = Path(__file__).resolve().parent.parent

# 70 samples in batches of 16: four full batches (8 + 8 per replica) and a partial one (3 + 3).
UNEVEN = {"samples": 70, "batch_size": 16, "epochs": 3, "features": 2, "shuffle": True}

SCENARIOS: dict[str, tuple[dict[str, Any], list[str]]] = {
    "sgd": ({**UNEVEN, "optimizer": "sgd", "replicas": 2}, []),
    "adam_l2": ({**UNEVEN, "optimizer": "adam", "learning_rate": 0.05, "l2": 0.01, "replicas": 2}, []),
    "loss_scale": ({**UNEVEN, "optimizer": "sgd", "replicas": 2}, ["distributed-loss-scale"]),
    "fixed_batch": ({**UNEVEN, "optimizer": "sgd", "replicas": 2}, ["fixed-global-batch"]),
}

CHILD = """
import json, sys
from fitvstape.distribute import configure_replicas
from fitvstape.runner import run_comparison
from fitvstape.config import resolve
from fitvstape.errors import InputError

configure_replicas(2)  # before any other TensorFlow work
out = {}
for name, (settings, pitfalls) in json.loads(sys.argv[1]).items():
    r = run_comparison(resolve(None, settings), pitfalls)
    c = r.comparison
    out[name] = {
        "match": c.match,
        "loss_diff": c.max_abs_loss_diff,
        "weight_diff": c.max_abs_weight_diff,
        "fit": [r.fit.epoch_losses, r.fit.weights.flat()],
        "tape": [r.tape.epoch_losses, r.tape.weights.flat()],
        "distribution": r.distribution.to_dict(),
    }
def refused(call):
    try:
        call()
    except InputError as exc:
        return str(exc)
    return None
out["more_replicas"] = refused(lambda: configure_replicas(3))
out["odd_batch"] = refused(
    lambda: run_comparison(resolve(None, {"samples": 70, "batch_size": 15, "replicas": 2}))
)
print("RESULT " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def mirrored() -> dict[str, Any]:
    """Every MirroredStrategy scenario, trained once in a fresh process with two logical CPUs."""
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(SCENARIOS)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT ") :])


def test_two_replicas_sgd_uneven_last_batch_is_bit_exact(mirrored: dict[str, Any]) -> None:
    run = mirrored["sgd"]
    assert run["match"], run
    assert run["fit"] == run["tape"]  # every epoch loss and weight, bit for bit
    assert run["distribution"] == {
        "strategy": "MirroredStrategy",
        "replicas": 2,
        "workers": 1,
        "devices": ["/cpu:0", "/cpu:1"],
    }


def test_two_replicas_adam_with_l2_is_bit_exact(mirrored: dict[str, Any]) -> None:
    run = mirrored["adam_l2"]
    assert run["match"], run
    assert run["fit"] == run["tape"]


@pytest.mark.parametrize("scenario", ["loss_scale", "fixed_batch"])
def test_distributed_pitfalls_differ_from_fit(mirrored: dict[str, Any], scenario: str) -> None:
    run = mirrored[scenario]
    assert not run["match"]
    assert run["weight_diff"] > 1e-3 and run["loss_diff"] > 1e-3
    assert run["fit"] == mirrored["sgd"]["fit"]  # only the tape path changed


def test_replicas_need_a_fresh_process_and_an_even_split(mirrored: dict[str, Any]) -> None:
    assert "fresh process" in mirrored["more_replicas"]
    assert "--replicas 2" in mirrored["odd_batch"] and "multiple of 2" in mirrored["odd_batch"]


# -- local workers ------------------------------------------------------------------------------


def _carrying(token: str) -> list[int]:
    """Live processes whose environment holds ``token`` (the workers this test started)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes()
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if token.encode() in env and b"fitvstape._worker" in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh marker in the environment the workers inherit."""
    value = f"fitvstape-test-{uuid.uuid4().hex}"
    monkeypatch.setenv("FITVSTAPE_TEST_TOKEN", value)
    return value


def test_two_workers_are_bit_exact_and_leave_no_process(token: str) -> None:
    config = resolve(None, {**UNEVEN, "workers": 2})
    result = run_workers(config, timeout_s=180)
    assert result.comparison.match, result.comparison
    assert result.fit.epoch_losses == result.tape.epoch_losses
    assert result.fit.weights.flat() == result.tape.weights.flat()
    info = result.distribution
    assert (info.strategy, info.replicas, info.workers) == ("MultiWorkerMirroredStrategy", 2, 2)
    assert len(info.devices) == 2 and all("/task:" in d for d in info.devices)
    assert _carrying(token) == []


def test_a_killed_worker_is_a_clear_error_and_leaves_no_process(
    token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(distribute.KILL_WORKER_VARIABLE, "1")
    config = resolve(None, {**UNEVEN, "workers": 2})
    start = time.monotonic()
    with pytest.raises(DistributedError, match=r"worker 1 of 2 died \(killed by SIGKILL\)"):
        run_workers(config, timeout_s=180)
    assert time.monotonic() - start < 90  # noticed at once, not at the timeout
    assert _carrying(token) == []


def fitvstape(*args: str) -> subprocess.CompletedProcess[str]:
    """The real command line in a fresh process: replicas need TensorFlow to start fresh."""
    return subprocess.run(
        [sys.executable, "-m", "fitvstape", *args], capture_output=True, text=True, timeout=300, cwd=REPO
    )


def test_cli_run_with_two_replicas_reports_the_strategy_and_matches():
    done = fitvstape(
        "run", "--replicas", "2", "--samples", "70", "--batch-size", "16", "--epochs", "2", "--format", "json"
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["summary"]["match"] is True and doc["summary"]["max_ulp_diff"] == 0
    assert doc["distribution"]["strategy"] == "MirroredStrategy"
    assert doc["distribution"]["replicas"] == 2 and len(doc["distribution"]["devices"]) == 2


def test_cli_check_with_distributed_loss_scale_fails_the_gate():
    done = fitvstape(
        "check",
        "--replicas",
        "2",
        "--samples",
        "70",
        "--batch-size",
        "16",
        "--epochs",
        "2",
        "--pitfall",
        "distributed-loss-scale",
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith("DIFFER")
