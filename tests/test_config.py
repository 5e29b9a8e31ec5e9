"""Settings: defaults, validation, and the locally generated secret key."""

import stat

import pytest

from exact.config import ensure_local_secret_key, load_settings


def test_defaults_work_on_a_fresh_clone(tmp_path):
    settings = load_settings({"EXACT_DATA_DIR": str(tmp_path / "data")})
    assert settings.database_url is None and settings.max_upload_mb == 200
    assert settings.private_root == (tmp_path / "data" / "private").resolve()
    assert settings.embedded_pgdata == (tmp_path / "data" / "postgres").resolve()
    assert settings.secret_key is None  # generated on first start, never a value from the code


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"EXACT_MAX_UPLOAD_MB": "lots"}, "whole number"),
        ({"EXACT_MAX_UPLOAD_MB": "0"}, "positive"),
        ({"EXACT_SESSION_DAYS": "-1"}, "positive"),
        ({"EXACT_STATEMENT_TIMEOUT_MS": "fast"}, "^EXACT_STATEMENT_TIMEOUT_MS must be a whole number, not 'fast'$"),
        ({"EXACT_STATEMENT_TIMEOUT_MS": "2.5"}, "^EXACT_STATEMENT_TIMEOUT_MS must be a whole number"),
        ({"EXACT_STATEMENT_TIMEOUT_MS": "0"}, "^EXACT_STATEMENT_TIMEOUT_MS must be positive, not 0$"),
        ({"EXACT_STATEMENT_TIMEOUT_MS": "-100"}, "^EXACT_STATEMENT_TIMEOUT_MS must be positive"),
        ({"EXACT_DB_POOL_SIZE": "ten"}, "^EXACT_DB_POOL_SIZE must be a whole number, not 'ten'$"),
        ({"EXACT_DB_POOL_SIZE": "0"}, "^EXACT_DB_POOL_SIZE must be positive, not 0$"),
        ({"EXACT_DB_POOL_SIZE": "-3"}, "^EXACT_DB_POOL_SIZE must be positive"),
    ],
)
def test_bad_settings_are_explained(env, message):
    with pytest.raises(ValueError, match=message):
        load_settings(env)


def test_private_root_may_not_sit_inside_the_media_root(tmp_path):
    with pytest.raises(ValueError, match="EXACT_PRIVATE_ROOT"):
        load_settings({"EXACT_MEDIA_ROOT": str(tmp_path / "media"), "EXACT_PRIVATE_ROOT": str(tmp_path / "media/gt")})


def test_local_secret_is_generated_once_private_and_reused(tmp_path):
    first = ensure_local_secret_key(tmp_path)
    second = ensure_local_secret_key(tmp_path)
    assert first == second and len(first) >= 32
    mode = stat.S_IMODE((tmp_path / "secret_key").stat().st_mode)
    assert mode == 0o600
    other = tmp_path / "other"
    assert ensure_local_secret_key(other) != first


@pytest.mark.parametrize("key", ["x", "changeme", "s" * 31])
def test_secret_keys_shorter_than_32_characters_are_refused(key):
    message = rf"^EXACT_SECRET_KEY must be at least 32 characters long \(it has {len(key)}\)"
    with pytest.raises(ValueError, match=message):
        load_settings({"EXACT_SECRET_KEY": key})


def test_secret_keys_of_32_characters_or_more_are_accepted():
    assert load_settings({"EXACT_SECRET_KEY": "k" * 32}).secret_key == "k" * 32
    assert load_settings({"EXACT_SECRET_KEY": ""}).secret_key is None  # unset: generated locally by make run


def test_exact_host_defaults_to_loopback():
    assert load_settings({}).host == "127.0.0.1"
    assert load_settings({"EXACT_HOST": " 192.168.1.20 "}).host == "192.168.1.20"


def test_statement_timeout_and_pool_size_default_and_are_read():
    defaults = load_settings({})
    assert (defaults.statement_timeout_ms, defaults.db_pool_size) == (5000, 10)
    configured = load_settings({"EXACT_STATEMENT_TIMEOUT_MS": " 1500 ", "EXACT_DB_POOL_SIZE": "25"})
    assert (configured.statement_timeout_ms, configured.db_pool_size) == (1500, 25)
    blank = load_settings({"EXACT_STATEMENT_TIMEOUT_MS": "", "EXACT_DB_POOL_SIZE": "  "})
    assert (blank.statement_timeout_ms, blank.db_pool_size) == (5000, 10)


def test_a_spawned_scorer_importing_the_app_script_does_not_run_the_app(tmp_path):
    """multiprocessing's spawn re-imports the parent's __main__ (app.py, inside a page run) as __mp_main__: that
    import must not run the app, which would open the database and try to start scorers from the child."""
    import os
    import subprocess
    import sys

    from exact import PROJECT_ROOT

    environment = dict(os.environ, DATABASE_URL="postgresql://nobody@127.0.0.1:9/nowhere",
                       EXACT_DATA_DIR=str(tmp_path))  # fmt: skip
    code = "import runpy; runpy.run_path('app.py', run_name='__mp_main__'); print('imported')"
    done = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, env=environment, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("imported")
    assert "database not available" not in done.stderr and "nowhere" not in done.stderr
