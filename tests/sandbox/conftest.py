"""Fixtures for the sandbox's own tests: the session sandbox, per-test cleanup, per-provider shortcuts."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from sandbox.pytest_plugin import SandboxHandle, sandbox, sandbox_clean  # noqa: F401

FFPROBE = "/usr/bin/ffprobe"
FFMPEG = "/usr/bin/ffmpeg"


@pytest.fixture(autouse=True)
def _clean(sandbox_clean: SandboxHandle) -> None:  # noqa: F811
    """Every test starts with no faults, the real clock and the default config."""


@pytest.fixture
def restore(sandbox: SandboxHandle) -> Iterator[SandboxHandle]:  # noqa: F811
    """For tests that change seeded data (deletes, transcriptions, pause): reset it afterwards."""
    yield sandbox
    sandbox.reset()


@pytest.fixture(scope="session")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


@pytest.fixture(scope="session")
def ffprobe() -> str:
    """The system ffprobe; its absence fails the audio tests (it must not silently skip them)."""
    if not shutil.which(FFPROBE):
        pytest.fail(f"{FFPROBE} is required by the audio tests (apt-get install ffmpeg)")
    return FFPROBE


def entry(sandbox: SandboxHandle, name: str) -> dict[str, Any]:  # noqa: F811
    return sandbox.index["providers"][name]
