"""Fixtures of the reliability suite: real processes (simulator host, ``oexec run``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ..e2e.conftest import control, make_daemon, sim  # noqa: F401 (in-process daemons)
from .procs import DaemonProc, SimHost


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("reliability")


@pytest.fixture(scope="module")
def sim_proc(workdir: Path) -> Iterator[SimHost]:
    host = SimHost(workdir)
    host.start()
    yield host
    host.stop()


@pytest.fixture(scope="module")
def daemon_proc(workdir: Path, sim_proc: SimHost) -> Iterator[DaemonProc]:
    daemon = DaemonProc(workdir, sim_proc)
    daemon.start()
    yield daemon
    daemon.stop()
