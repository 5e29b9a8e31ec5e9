"""/auth/session over real HTTP against a live ``streamlit run server.py``: the login ticket is traded for an
HttpOnly, SameSite=Lax session cookie set by the server; foreign origins, reused tickets and open redirects get
nothing; logout clears the cookie.

The tickets are made by calling the service directly on the server's own database (``LiveApp.db``), as the login
page would after checking the password. One server serves the whole module (starting one takes seconds); every
test makes its own user and session, so they do not depend on each other.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa

from exact import sessions
from tests.conftest import make_user
from tests.live_server import LiveApp, served

SESSION_DAYS = 3
_names = itertools.count()


@pytest.fixture(scope="module")
def server(scratch_databases, tmp_path_factory, request: pytest.FixtureRequest) -> Iterator[LiveApp]:
    """Like tests/live_server.py's ``live_app``, once per module: the app on a scratch database with the schema."""
    env = {"EXACT_SESSION_DAYS": str(SESSION_DAYS)}
    with served(scratch_databases, tmp_path_factory, request, env, prefix="exact_exchange") as app:
        yield app


@pytest.fixture
def client(server: LiveApp) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, follow_redirects=False, timeout=30) as http:
        yield http


def _session(server: LiveApp) -> tuple[int, str]:
    user = make_user(server.db, f"user{next(_names)}")
    session_id, _ = sessions.start_session(server.db, user.id, secret_key=server.secret_key, days=SESSION_DAYS)
    return user.id, session_id


def _ticket(server: LiveApp, session_id: str) -> str:
    return sessions.issue_ticket(server.db, session_id)


def _post(
    client: httpx.Client, server: LiveApp, data: dict, *, origin: str | None = "own", **headers
) -> httpx.Response:
    if origin == "own":
        headers["Origin"] = server.url
    elif origin is not None:
        headers["Origin"] = origin
    return client.post("/auth/session", data=data, headers=headers)


def _set_cookies(response: httpx.Response) -> list[str]:
    return response.headers.get_list("set-cookie")


def _attributes(set_cookie: str) -> tuple[str, str, dict[str, str]]:
    """``(name, value, {attribute (lower case): value})`` of one Set-Cookie header."""
    first, *rest = [part.strip() for part in set_cookie.split(";")]
    name, _, value = first.partition("=")
    attributes = {}
    for part in rest:
        key, _, val = part.partition("=")
        attributes[key.strip().lower()] = val.strip()
    return name, value.strip('"'), attributes


def _redeemable(server: LiveApp, ticket: str) -> bool:
    return sessions.redeem_ticket(server.db, ticket, secret_key=server.secret_key, days=SESSION_DAYS) is not None


def test_a_good_ticket_sets_an_httponly_lax_cookie_and_goes_back(server: LiveApp, client: httpx.Client) -> None:
    user_id, session_id = _session(server)
    ticket = _ticket(server, session_id)
    response = _post(client, server, {"ticket": ticket, "next": "/leaderboard?challenge=iris"})
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/leaderboard?challenge=iris"
    assert response.headers["cache-control"] == "no-store"
    [set_cookie] = _set_cookies(response)
    name, value, attributes = _attributes(set_cookie)
    assert name == sessions.COOKIE_NAME
    assert "httponly" in attributes
    assert attributes["samesite"].lower() == "lax"
    assert attributes["path"] == "/"
    assert attributes["max-age"] == str(SESSION_DAYS * 86400)
    assert "secure" not in attributes  # plain http
    assert "domain" not in attributes  # host-only
    resolved = sessions.resolve_session(server.db, value, secret_key=server.secret_key, days=SESSION_DAYS)
    assert resolved is not None and resolved[0] == session_id and resolved[1].id == user_id

    # The cookie works for the app itself: the websocket session is not tested here, but the browser test is.
    assert not _redeemable(server, ticket), "the ticket was spent"


def test_a_used_ticket_is_refused_and_sets_nothing(server: LiveApp, client: httpx.Client) -> None:
    _, session_id = _session(server)
    ticket = _ticket(server, session_id)
    first = _post(client, server, {"ticket": ticket, "next": "/"})
    assert first.status_code == 303 and _set_cookies(first)
    again = _post(client, server, {"ticket": ticket, "next": "/"})
    assert again.status_code == 303
    assert again.headers["location"].startswith("/login")
    assert _set_cookies(again) == []
    assert again.headers["cache-control"] == "no-store"


def test_expired_revoked_and_unknown_tickets_set_nothing(server: LiveApp, client: httpx.Client) -> None:
    _, session_id = _session(server)
    expired = _ticket(server, session_id)
    with server.db.transaction() as conn:
        conn.execute(
            sa.text("UPDATE exact_login_ticket SET expires_at = now() - interval '1 second' WHERE session_id = :s"),
            {"s": session_id},
        )
    _, other_session = _session(server)
    revoked = _ticket(server, other_session)
    sessions.end_session(server.db, other_session)
    for ticket in (expired, revoked, "not-a-ticket", ""):
        response = _post(client, server, {"ticket": ticket, "next": "/"})
        assert response.status_code == 303, ticket
        assert response.headers["location"].startswith("/login"), ticket
        assert _set_cookies(response) == [], ticket
    no_ticket = _post(client, server, {"next": "/"})
    assert no_ticket.status_code == 303 and _set_cookies(no_ticket) == []


@pytest.mark.parametrize(
    ("origin", "referer"),
    [
        ("https://evil.example", None),
        ("http://evil.example", None),
        ("null", None),  # sandboxed frames and data: pages
        ("https://127.0.0.1", None),  # same host, other scheme and port
        (None, "https://evil.example/login"),
        (None, None),  # neither header: cannot tell, so no
    ],
)
def test_a_request_from_another_origin_is_refused(
    server: LiveApp, client: httpx.Client, origin: str | None, referer: str | None
) -> None:
    """Login CSRF: another site posting its own (attacker's) ticket would log the victim's browser into the
    attacker's account. Nothing is set and the ticket is not even looked at."""
    _, session_id = _session(server)
    ticket = _ticket(server, session_id)
    headers = {"Referer": referer} if referer else {}
    response = _post(client, server, {"ticket": ticket, "next": "/"}, origin=origin, **headers)
    assert response.status_code == 403
    assert _set_cookies(response) == []
    assert response.headers["cache-control"] == "no-store"
    assert 'href="/"' in response.text.replace("'", '"')  # a way back
    assert _redeemable(server, ticket), "a refused request does not spend the ticket"


def test_a_same_origin_referer_is_enough_without_origin(server: LiveApp, client: httpx.Client) -> None:
    _, session_id = _session(server)
    response = _post(
        client, server, {"ticket": _ticket(server, session_id), "next": "/"}, origin=None, Referer=server.url + "/login"
    )
    assert response.status_code == 303 and len(_set_cookies(response)) == 1


@pytest.mark.parametrize(
    "next_value",
    [
        "//evil.example",
        "//evil.example/login",
        "https://evil.example",
        "http://evil.example/",
        "/\\evil.example",
        "/\\/evil.example",
        "\\\\evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        "javascript:alert(1)",
        "evil.example",
        "",
        "/" + "a" * 3000,
    ],
)
def test_next_cannot_leave_the_site(server: LiveApp, client: httpx.Client, next_value: str) -> None:
    _, session_id = _session(server)
    response = _post(client, server, {"ticket": _ticket(server, session_id), "next": next_value})
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    assert len(_set_cookies(response)) == 1  # the login itself still works


def test_get_never_redeems_a_ticket(server: LiveApp, client: httpx.Client) -> None:
    """An <img src=".../auth/session?ticket=…"> on any site sends a GET (with no Origin): nothing happens."""
    _, session_id = _session(server)
    ticket = _ticket(server, session_id)
    response = client.get(
        "/auth/session", params={"ticket": ticket, "next": "/profile"}, headers={"Origin": server.url}
    )
    assert response.status_code in (303, 405)
    assert _set_cookies(response) == []
    if response.status_code == 303:
        assert response.headers["location"] == "/"
    assert _redeemable(server, ticket)


def test_a_form_that_is_not_urlencoded_is_refused(server: LiveApp, client: httpx.Client) -> None:
    _, session_id = _session(server)
    ticket = _ticket(server, session_id)
    response = client.post(
        "/auth/session", json={"ticket": ticket, "next": "/"}, headers={"Origin": server.url}
    )  # a JSON body (fetch with a JSON content type)
    assert response.status_code == 400 and _set_cookies(response) == []
    assert _redeemable(server, ticket)


def test_logout_clears_the_cookie_and_revokes_its_session(server: LiveApp, client: httpx.Client) -> None:
    _, session_id = _session(server)
    login = _post(client, server, {"ticket": _ticket(server, session_id), "next": "/"})
    _, cookie, _ = _attributes(_set_cookies(login)[0])

    response = _post(client, server, {"logout": "1"}, Cookie=f"{sessions.COOKIE_NAME}={cookie}")
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    assert response.headers["cache-control"] == "no-store"
    [set_cookie] = _set_cookies(response)
    name, value, attributes = _attributes(set_cookie)
    assert (name, value) == (sessions.COOKIE_NAME, "")
    assert attributes["max-age"] == "0"
    assert "httponly" in attributes and attributes["samesite"].lower() == "lax" and attributes["path"] == "/"
    assert sessions.resolve_session(server.db, cookie, secret_key=server.secret_key, days=SESSION_DAYS) is None

    # Logging out from another site is refused like logging in.
    foreign = _post(client, server, {"logout": "1"}, origin="https://evil.example")
    assert foreign.status_code == 403 and _set_cookies(foreign) == []


def test_behind_a_local_tls_proxy_the_cookie_is_secure(server: LiveApp, client: httpx.Client) -> None:
    """A reverse proxy on the same machine terminates TLS and says so with X-Forwarded-Proto (uvicorn trusts it
    from 127.0.0.1 only, FORWARDED_ALLOW_IPS): the request counts as https, and so must its Origin."""
    _, session_id = _session(server)
    host = server.url.removeprefix("http://")
    response = _post(
        client,
        server,
        {"ticket": _ticket(server, session_id), "next": "/"},
        origin=f"https://{host}",
        **{"X-Forwarded-Proto": "https"},
    )
    assert response.status_code == 303, response.text
    [set_cookie] = _set_cookies(response)
    _, _, attributes = _attributes(set_cookie)
    assert "secure" in attributes and "httponly" in attributes
    # ... and an http origin posting to that https request is another origin.
    refused = _post(
        client, server, {"ticket": _ticket(server, session_id), "next": "/"}, **{"X-Forwarded-Proto": "https"}
    )
    assert refused.status_code == 403 and _set_cookies(refused) == []
