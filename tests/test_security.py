"""Secure defaults: login everywhere, throttled failed logins, CSP, and a clean
`check --deploy` under production settings."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from tests.conftest import PASSWORD, make_persona

ROOT = Path(settings.BASE_DIR)


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/", "/customers/", "/customers/1/", "/customers/1/history/"])
def test_every_page_needs_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_repeated_failed_logins_lock_the_account_out(client):
    make_persona("staff")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/accounts/login/", {"username": "staff", "password": "guess"})
    locked = client.post("/accounts/login/", {"username": "staff", "password": PASSWORD})
    assert locked.status_code == 429
    assert "Too many failed log-in attempts" in locked.content.decode()


@pytest.mark.django_db
def test_successful_login_with_the_right_password(client):
    make_persona("staff")
    response = client.post("/accounts/login/", {"username": "staff", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"


@pytest.mark.django_db
def test_pages_carry_a_content_security_policy_that_allows_only_the_app(client):
    response = client.get("/accounts/login/")
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert "unsafe-inline" not in policy


def test_no_template_or_asset_loads_anything_from_another_host():
    external = re.compile(r"""(src|href)=["']?(https?:)?//""", re.IGNORECASE)
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("templates", "static")
        for path in (ROOT / folder).rglob("*")
        if path.is_file() and external.search(path.read_text(errors="ignore"))
    ]
    assert offenders == []


def _manage(*args, **env):
    # The production process gets none of the test run's overrides.
    test_only = {
        "DEBUG",
        "SECRET_KEY",
        "DJANGO_ALLOW_ASYNC_UNSAFE",
        "SECURE_SSL_REDIRECT",
        "CIM_COLLECTSTATIC",
        "CIM_TEST_MEMORY_BROKER",
    }
    clean_env = {k: v for k, v in os.environ.items() if k not in test_only}
    return subprocess.run(  # noqa: S603 - our own manage.py with fixed arguments
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean_env, "DJANGO_SETTINGS_MODULE": "cim.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_production_settings_pass_check_deploy():
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        SECRET_KEY="a-long-random-production-secret-" + "k3y!" * 10,
        ALLOWED_HOSTS="cim.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_refuses_to_start_without_a_secret_key():
    result = _manage("check")
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr
