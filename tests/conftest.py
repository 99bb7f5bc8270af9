"""Shared fixtures: one synth of each shipped configuration per test session (a synth takes ~15 s)."""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("CHECKPOINT_DISABLE", "1")

import modules  # noqa: E402, F401  (before any test imports a binding: the lean AWS bindings, modules/bindings.py)
from mlpipe.engine.terraform import find_engine, format_directory  # noqa: E402
from mlpipe.synth.runner import SynthResult, file_sha256, read_synth_record, synthesize  # noqa: E402

LOCAL_CONFIG = ROOT / "config" / "local.toml"
EXAMPLE_CONFIG = ROOT / "config" / "example.toml"


def formatter() -> Callable[[Path], None]:
    """`terraform fmt` with whichever engine this machine has (as the workflow does)."""
    engine = find_engine(os.environ)
    return lambda directory: format_directory(engine, directory)


def synth(config: Path, outdir: Path) -> SynthResult:
    return synthesize(config, outdir, formatter())


def shared_synth(config: Path, tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    """One synth per configuration for the whole run, shared by the xdist workers through a file lock."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the directory all workers of this run share
    outdir = root / f"shared-{config.stem}" / "cdktf.out"
    outdir.parent.mkdir(parents=True, exist_ok=True)
    with (outdir.parent / "lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        record = read_synth_record(outdir)
        if record is not None and record.get("config_sha256") == file_sha256(config):
            return SynthResult(outdir.resolve(), record["config_sha256"], tuple(record["stacks"]), 0.0)
        return synth(config, outdir)


@pytest.fixture(scope="session")
def local_synth(tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    return shared_synth(LOCAL_CONFIG, tmp_path_factory)


@pytest.fixture(scope="session")
def example_synth(tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    return shared_synth(EXAMPLE_CONFIG, tmp_path_factory)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Longest first: files with end-to-end tests, then `heavy` files, then the rest (order within a file kept).

    With `--dist loadfile --no-loadscope-reorder` (the Makefile), xdist hands out files in this
    order, so the ten-minute platform file starts at once instead of whenever a worker is free;
    xdist's default orders files by their number of tests, which put it near the end. In
    `make test-fast` the heavy files first keep one worker from running a 15 s file alone at the end.
    """
    e2e_files = {item.path for item in items if item.get_closest_marker("e2e")}
    heavy_files = {item.path for item in items if item.get_closest_marker("heavy")}
    items.sort(
        key=lambda item: (item.path not in e2e_files, item.path not in heavy_files, item.path.parent.name != "e2e")
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI a skipped test is a failure: every test, end-to-end included, must really run."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if os.environ.get("CI") and skipped and exitstatus == 0:
        print(f"\nCI: {skipped} test(s) skipped; every test must run in CI")
        session.exitstatus = 1
