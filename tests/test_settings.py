"""Settings fail fast without production secrets; the deployment check is clean."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "x" * 20 + "-production-like-secret-key-with-enough-entropy-0123456789",
    "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    "ALLOWED_HOSTS": "portal.example.com",
    "HTTPS": "true",
}


def run_manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in PRODUCTION and k != "DJANGO_SETTINGS_MODULE"}
    clean.update(env)
    clean["DJANGO_SETTINGS_MODULE"] = "portal.settings"
    # Run outside the checkout's .env so that only the given environment counts.
    clean["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=clean,
        capture_output=True,
        text=True,
        cwd="/tmp",
        timeout=60,
    )


@pytest.mark.parametrize("missing", ["SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "ALLOWED_HOSTS"])
def test_it_refuses_to_start_without(missing, tmp_path):
    env = {k: v for k, v in PRODUCTION.items() if k != missing}
    env[missing] = ""
    result = run_manage("check", env=env)
    assert result.returncode != 0
    assert f"{missing} is not set" in result.stderr


def test_it_rejects_a_malformed_encryption_key():
    result = run_manage(
        "shell",
        "-c",
        "from recordings.fields import get_fernet; get_fernet()",
        env={**PRODUCTION, "FIELD_ENCRYPTION_KEYS": "not-a-key"},
    )
    assert result.returncode != 0
    assert "not a Fernet key" in result.stderr


def test_it_rejects_an_unknown_tasks_backend():
    result = run_manage("check", env={**PRODUCTION, "TASKS_BACKEND": "celery"})
    assert result.returncode != 0
    assert "TASKS_BACKEND must be one of" in result.stderr


def test_deploy_check_is_clean_under_the_documented_production_environment():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_debug_runs_without_secrets():
    result = run_manage("check", env={"DEBUG": "true"})
    assert result.returncode == 0, result.stderr
