"""Configuration an attacker would probe: XSRF and CORS stay on, tracebacks never reach the browser, secrets stay out
of the repository, and an unexpected error shows an apology with a reference instead of internals."""

from __future__ import annotations

import tomllib

from exact import PROJECT_ROOT
from tests.pages_helpers import log_in_state, run, title


def test_streamlit_keeps_xsrf_and_cors_on_and_error_details_off():
    config = tomllib.loads((PROJECT_ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["enableXsrfProtection"] is True
    assert config["server"]["enableCORS"] is True
    assert config["client"]["showErrorDetails"] == "none"


def test_secrets_and_data_are_kept_out_of_the_repository():
    ignored = set((PROJECT_ROOT / ".gitignore").read_text().split())
    assert {".data/", ".streamlit/secrets.toml", "/media/*"} <= ignored
    assert not (PROJECT_ROOT / ".streamlit" / "secrets.toml").exists() or ".streamlit/secrets.toml" in ignored


def test_an_unexpected_error_shows_a_reference_not_internals(app, db, cast, monkeypatch):
    import exact.scores

    def leaky(*_args, **_kwargs):
        raise RuntimeError("internal detail: password=hunter2 at /srv/exact/secret.py line 42")

    monkeypatch.setattr(exact.scores, "site_totals", leaky)
    at = app()
    log_in_state(at, db, cast.participant.id)
    run(at)  # fails on any exception element: none may reach the browser
    assert title(at) == "Exact"
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith("Sorry, something went wrong on our side."), errors
    assert "quote reference **" in errors[0]
    shown = " ".join(str(getattr(node, "value", "")) for node in at._tree if hasattr(node, "proto"))
    assert "hunter2" not in shown and "secret.py" not in shown and "Traceback" not in shown


def test_a_short_secret_key_stops_the_app_with_an_explanation(app, db, monkeypatch):
    """A guessable cookie key would let anyone forge sessions: the app refuses to serve with one."""
    monkeypatch.setenv("EXACT_SECRET_KEY", "changeme")
    at = run(app())
    assert title(at) == "Exact's configuration has an error"
    assert [e.value for e in at.error] == [
        "EXACT_SECRET_KEY must be at least 32 characters long (it has 8); generate one with: "
        'python -c "import secrets; print(secrets.token_urlsafe(48))"'
    ]
    assert not at.text_input  # no login or set-up form is served
