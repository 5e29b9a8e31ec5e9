"""Copy-paste text for submitting from code: the ``python -m exact submit`` command and the matching curl call.

The text building is pure (a challenge id, whether the server scores it, a base URL), so it is unit-tested
without Streamlit; only ``browser_base_url`` looks at the running session. Everything taken from outside (the
challenge id, the browser's address) is quoted for a POSIX shell with ``shlex.quote``, and the id is also
percent-encoded inside URLs. Ids created here are letters, digits, ``-`` and ``_`` and come out unchanged;
ids written through Django may hold anything.
"""

from __future__ import annotations

import re
import shlex
from urllib.parse import quote, urlsplit

DEFAULT_BASE_URL = "http://127.0.0.1:8501"  # what `make run` serves on this machine
EXAMPLE_SCORE = "0.87"
EXAMPLE_METHOD = "My method"
EXAMPLE_FILE = "attributions.npy"
TOKEN_FILE = "~/.config/exact/token"  # noqa: S105 - where the client looks for a token, not a token
# A host name (letters, digits, dots, hyphens) or a bracketed IPv6 address, then an optional port.
_NETLOC = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?\Z")


def base_url(url: object) -> str:
    """Scheme, host and port of the browser's address, e.g. ``https://exact.example.org``.

    Anything that is not a plain ``http(s)://host[:port]/…`` string (None, a mock, credentials or odd characters
    in the authority, a bad port) gives ``DEFAULT_BASE_URL``. The path is dropped: the page's own path is in it.
    """
    if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
        return DEFAULT_BASE_URL
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        return DEFAULT_BASE_URL
    if parts.scheme not in ("http", "https") or not _NETLOC.match(parts.netloc):
        return DEFAULT_BASE_URL
    return f"{parts.scheme}://{parts.netloc.lower()}"


def browser_base_url() -> str:
    """The base URL as the browser reached this app (``st.context.url``), else ``DEFAULT_BASE_URL``."""
    try:
        import streamlit as st

        url = st.context.url
    except Exception:  # no browser behind this run (bare mode, an older Streamlit)
        return DEFAULT_BASE_URL
    return base_url(url)


def _challenge_url(challenge_id: str, base: str, endpoint: str) -> str:
    return f"{base}/api/v1/challenges/{quote(challenge_id, safe='')}/{endpoint}"


def environment(base: str) -> str:
    """The two variables the client and curl read: where the server is, and the token."""
    return (
        f"export EXACT_URL={shlex.quote(base)}\n"
        f'export EXACT_TOKEN="$(cat {TOKEN_FILE})"  # or paste your token: export EXACT_TOKEN=exact_…'
    )


def cli_command(challenge_id: str, *, server_scored: bool) -> str:
    """``python -m exact submit`` for this challenge: attributions for server-scored ones, else a score."""
    quoted = shlex.quote(challenge_id)
    # An id starting with "-" (possible only through Django) would read as an option: attach it with "=".
    head = f"python -m exact submit --challenge{'=' if challenge_id.startswith('-') else ' '}{quoted}"
    if server_scored:
        return f'{head} --attributions {EXAMPLE_FILE} --method "{EXAMPLE_METHOD}"'
    return f"{head} --score {EXAMPLE_SCORE}"


def curl_command(challenge_id: str, *, server_scored: bool, base: str) -> str:
    """The same submission with curl against the HTTP API (docs/api.md)."""
    auth = '-H "Authorization: Bearer $EXACT_TOKEN"'
    if server_scored:
        url = shlex.quote(_challenge_url(challenge_id, base, "submissions"))
        return f'curl {auth} -F method_name="{EXAMPLE_METHOD}" -F file=@{EXAMPLE_FILE} {url}'
    url = shlex.quote(_challenge_url(challenge_id, base, "scores"))
    body = shlex.quote(f'{{"score": {EXAMPLE_SCORE}}}')
    return f'curl {auth} -H "Content-Type: application/json" -d {body} {url}'


def docs_url(base: str) -> str:
    """The API's reference page (OpenAPI, readable in the browser)."""
    return f"{base}/api/v1/docs"
