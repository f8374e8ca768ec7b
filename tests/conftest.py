"""Shared fixtures. Training runs are the expensive part, so each scenario trains once per session."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from fitvstape.config import resolve
from fitvstape.runner import RunResult, run_comparison

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "configs"


@pytest.fixture(scope="session")
def comparison() -> Callable[..., RunResult]:
    """``comparison(**settings)`` trains both paths once per distinct set of settings."""
    cache: dict[tuple, RunResult] = {}

    def run(config_path: Path | None = None, **settings: object) -> RunResult:
        key = (config_path, tuple(sorted(settings.items())))
        if key not in cache:
            cache[key] = run_comparison(resolve(config_path, settings))
        return cache[key]

    return run


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """``write(name, text)`` puts a file in the test's temporary folder and returns its path."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return _write


# One fixed hypothesis profile: the same examples every run (derandomize), sized to about two
# minutes of training on CI's two cores. Each example trains both paths.
settings.register_profile(
    "fitvstape",
    max_examples=30,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("fitvstape")
