"""The command line: init-db, create-user, demo, and a readable error when the database is unreachable."""

import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

from db.database import Database
from exact import PROJECT_ROOT, passwords


def _cli(*args, db_url, media_root, stdin="", extra_env=None):
    env = {**os.environ, "DATABASE_URL": db_url, "EXACT_MEDIA_ROOT": str(media_root), **(extra_env or {})}
    return subprocess.run(
        [sys.executable, "-m", "exact", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=PROJECT_ROOT,
        timeout=120,
    )


DEMO_COMPETITIONS = ("xai-tris-rigid-8x8-running", "xai-tris-rigid-8x8-finished", "xai-tris-paper-rigid-8x8")


def test_init_db_create_user_and_demo(empty_db_url, media_root):
    result = _cli("init-db", db_url=empty_db_url, media_root=media_root)
    assert result.returncode == 0, result.stderr
    result = _cli(
        "create-user",
        "olivia",
        "--staff",
        "--password-stdin",
        db_url=empty_db_url,
        media_root=media_root,
        stdin="violet-otter-42-lamp\n",
    )
    assert result.returncode == 0, result.stderr
    assert "organiser 'olivia'" in result.stdout

    db = Database(empty_db_url)
    with db.connect() as conn:
        row = conn.execute(
            sa.text("SELECT password, is_staff, is_superuser FROM auth_user WHERE username='olivia'")
        ).one()
    assert row.is_staff and not row.is_superuser
    assert row.password.split("$")[1] == "1000000" and passwords.check_password("violet-otter-42-lamp", row.password)

    # Two epochs: the paper's 500 are for real use; what is checked here is that the models exist and load.
    first = _cli(
        "demo", "--epochs", "2", db_url=empty_db_url, media_root=media_root,
        extra_env={"EXACT_DEMO_PASSWORD": "demo-pass-123"},
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert "demo-pass-123" in first.stdout
    second = _cli("demo", db_url=empty_db_url, media_root=media_root)
    assert second.returncode == 0 and "0 users, 0 challenges, 0 scores" in second.stdout
    with db.connect() as conn:
        challenges = conn.execute(sa.text("SELECT challenge_id, dataset, mlmodel, xaimethod FROM api_challenge")).all()
        users = conn.execute(sa.text("SELECT count(*) FROM auth_user")).scalar_one()
        scores = conn.execute(
            sa.text(
                "SELECT count(*), count(DISTINCT username), min(created_at) < now() - interval '5 days' FROM api_score"
            )
        ).one()
    assert len(challenges) == 6 and users == 1 + 8
    for challenge in challenges:
        # The scored-on-the-server competitions have a generated dataset but no model or template file.
        for path in [p for p in challenge[1:] if p or challenge.challenge_id not in DEMO_COMPETITIONS]:
            assert path.startswith(f"challenges/{challenge.challenge_id}/") and (media_root / path).is_file()
    assert scores[0] > 20 and scores[1] >= 5 and scores[2]
    with db.connect() as conn:
        scored = conn.execute(
            sa.text(
                "SELECT challenge_id, kind, count(*) FILTER (WHERE status = 'done'), count(*) FROM exact_submission "
                "GROUP BY challenge_id, kind ORDER BY 1, 2"
            )
        ).all()
        owners = conn.execute(
            sa.text(
                "SELECT c.challenge_id, u.username FROM api_challenge c "
                "LEFT JOIN exact_challenge_owner o ON o.challenge_id = c.challenge_id "
                "LEFT JOIN auth_user u ON u.id = o.user_id"
            )
        ).all()
        models = conn.execute(
            sa.text(
                "SELECT architecture, status, explained, test_accuracy BETWEEN 0 AND 1 FROM exact_model "
                "WHERE challenge_id = 'xai-tris-paper-rigid-8x8' ORDER BY id"
            )
        ).all()
        files = conn.execute(sa.text("SELECT weights_path, onnx_path FROM exact_model")).all()
        phases = dict(
            conn.execute(
                sa.text(
                    "SELECT challenge_id, ends_at < now() FROM exact_competition "
                    "WHERE challenge_id LIKE 'xai-tris-rigid%'"
                )
            ).all()
        )
    db.dispose()
    assert [tuple(row) for row in scored] == [
        # The paper-protocol challenge: the five model-free baselines and the explained CNN's five Captum ones.
        ("xai-tris-paper-rigid-8x8", "baseline", 10, 10),
        ("xai-tris-paper-rigid-8x8", "participant", 2, 2),
        ("xai-tris-rigid-8x8-finished", "baseline", 5, 5),
        ("xai-tris-rigid-8x8-finished", "participant", 3, 3),
        ("xai-tris-rigid-8x8-running", "baseline", 5, 5),
        ("xai-tris-rigid-8x8-running", "participant", 3, 3),
    ]
    assert {username for _, username in owners} == {"olivia.organiser"}, "every demo challenge has its organiser"
    assert phases == {"xai-tris-rigid-8x8-finished": True, "xai-tris-rigid-8x8-running": False}
    assert [tuple(row) for row in models] == [("MLP8by8", "ready", False, True), ("CNN8by8", "ready", True, True)]
    for weights, onnx in files:
        assert (media_root / weights).is_file() and (media_root / onnx).is_file()


def test_create_user_refuses_weak_password_and_duplicates(db_url, media_root):
    weak = _cli("create-user", "bob", "--password-stdin", db_url=db_url, media_root=media_root, stdin="short\n")
    assert weak.returncode == 2 and "at least 8" in weak.stderr
    ok = _cli(
        "create-user", "bob", "--password-stdin", db_url=db_url, media_root=media_root, stdin="violet-otter-42-lamp\n"
    )
    assert ok.returncode == 0
    again = _cli(
        "create-user", "bob", "--password-stdin", db_url=db_url, media_root=media_root, stdin="violet-otter-42-lamp\n"
    )
    assert again.returncode == 2 and "already taken" in again.stderr


def test_unreachable_database_is_a_readable_error(media_root):
    result = _cli("init-db", db_url="postgresql+psycopg://nobody@127.0.0.1:1/nothing", media_root=media_root)
    assert result.returncode == 3
    assert "database is unavailable" in result.stderr and "Traceback" not in result.stderr


def _evaluate(*args):
    return subprocess.run(
        [sys.executable, "-m", "exact", "evaluate", *args],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=120,
    )


def test_offline_evaluate_prints_every_metric_and_json(tmp_path):
    import json

    import numpy as np

    rng = np.random.default_rng(0)
    masks = np.zeros((6, 5, 5))
    masks[:, 1:3, 1:3] = 1
    masks[5] = 0  # an empty mask: not scorable
    attributions = rng.normal(size=(6, 25))
    np.savez(tmp_path / "masks.npz", masks=masks)
    np.save(tmp_path / "attr.npy", attributions)

    human = _evaluate("--masks", str(tmp_path / "masks.npz"), "--attributions", str(tmp_path / "attr.npy"))
    assert human.returncode == 0, human.stderr
    for label in ("EMD score", "Importance mass accuracy", "Precision (rank accuracy)", "ROC-AUC"):
        assert label in human.stdout

    machine = _evaluate("--masks", str(tmp_path / "masks.npz"), "--attributions", str(tmp_path / "attr.npy"), "--json")
    report = json.loads(machine.stdout)
    a = np.abs(attributions.reshape(6, 5, 5))[:5]
    expected_mass = np.mean([a[i][1:3, 1:3].sum() / a[i].sum() for i in range(5)])  # plain NumPy reference
    assert report["n_samples"] == 6
    assert report["metrics"]["mass"]["mean"] == pytest.approx(expected_mass, abs=1e-12)
    assert all(m["n_not_scorable"] == 1 and m["n_scored"] == 5 for m in report["metrics"].values())


def test_offline_evaluate_takes_the_papers_emd_normaliser(tmp_path):
    import json

    import numpy as np

    masks = np.zeros((1, 8, 8))
    masks[0, 2, 2] = 1
    attributions = np.zeros((1, 8, 8))
    attributions[0, 2, 3] = 1  # all the mass one pixel away: EMD = 1
    np.save(tmp_path / "masks.npy", masks)
    np.save(tmp_path / "attr.npy", attributions)
    files = ("--masks", str(tmp_path / "masks.npy"), "--attributions", str(tmp_path / "attr.npy"), "--json")
    ours = json.loads(_evaluate(*files).stdout)["metrics"]["emd"]["mean"]
    paper = json.loads(_evaluate(*files, "--emd-normaliser", "sqrt_2hw").stdout)["metrics"]["emd"]["mean"]
    assert ours == pytest.approx(1 - 1 / 98**0.5, abs=1e-12)  # the grid diagonal sqrt(7^2 + 7^2)
    assert paper == pytest.approx(1 - 1 / 128**0.5, abs=1e-12)  # XAI-TRIS: sqrt(2 * 8 * 8)


def test_offline_evaluate_takes_the_papers_precision_rule(tmp_path):
    import json

    import numpy as np

    masks = np.zeros((1, 8, 8))
    masks[0, 2, 2] = masks[0, 2, 4] = 1
    attributions = np.zeros((1, 8, 8))
    attributions[0, 2, 3] = 1  # one non-zero pixel, outside the 2-pixel mask
    np.save(tmp_path / "masks.npy", masks)
    np.save(tmp_path / "attr.npy", attributions)
    files = ("--masks", str(tmp_path / "masks.npy"), "--attributions", str(tmp_path / "attr.npy"), "--json")
    ours = json.loads(_evaluate(*files).stdout)["metrics"]["precision"]["mean"]
    paper = json.loads(_evaluate(*files, "--precision-rule", "paper").stdout)["metrics"]["precision"]["mean"]
    # Exact's rule: the second place goes to one of the 63 tied zeros, 2 of them inside: (2 / 63) / 2.
    assert ours == pytest.approx(1 / 63, abs=1e-12)
    assert paper == 0.0  # XAI-TRIS: only the one non-zero pixel is taken, and it misses


def test_offline_evaluate_refuses_bad_files_with_a_message(tmp_path):
    import pickle

    import numpy as np

    np.save(tmp_path / "masks.npy", np.ones((3, 4, 4)))
    (tmp_path / "evil.npy").write_bytes(pickle.dumps({"x": 1}))
    np.save(tmp_path / "short.npy", np.ones((2, 4, 4)))
    evil = _evaluate("--masks", str(tmp_path / "masks.npy"), "--attributions", str(tmp_path / "evil.npy"))
    assert evil.returncode == 2 and "Traceback" not in evil.stderr and "evil.npy" in evil.stderr
    short = _evaluate("--masks", str(tmp_path / "masks.npy"), "--attributions", str(tmp_path / "short.npy"))
    assert short.returncode == 2 and "expected 3 samples of 4×4" in short.stderr
    missing = _evaluate("--masks", str(tmp_path / "nope.npy"), "--attributions", str(tmp_path / "short.npy"))
    assert missing.returncode == 2 and "No such file" in missing.stderr


ALL_ADDRESSES = "0.0.0.0"  # noqa: S104 - a workshop's EXACT_HOST; nothing binds here


@pytest.mark.parametrize(
    ("host", "address", "url"),
    [
        (None, "127.0.0.1", "http://127.0.0.1:8765"),
        ("  ", "127.0.0.1", "http://127.0.0.1:8765"),  # blank is not "every interface"
        ("::1", "::1", "http://[::1]:8765"),
        (ALL_ADDRESSES, ALL_ADDRESSES, "http://127.0.0.1:8765 (listening on all addresses)"),
        ("192.168.1.20", "192.168.1.20", "http://192.168.1.20:8765"),
    ],
)
def test_run_listens_on_loopback_unless_exact_host_says_otherwise(monkeypatch, tmp_path, capsys, host, address, url):
    from exact import cli
    from exact.config import load_settings

    started = []
    monkeypatch.setattr(os, "execv", lambda path, argv: started.append(argv))  # capture instead of replacing pytest
    monkeypatch.setattr(os, "chdir", lambda _path: None)
    env = {"EXACT_DATA_DIR": str(tmp_path), "DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/x"}
    if host is not None:
        env["EXACT_HOST"] = host
    cli.cmd_run(load_settings(env), cli.build_parser().parse_args(["run", "--port", "8765"]))
    [argv] = started
    assert argv[argv.index("--server.address") + 1] == address
    assert argv.count("--server.address") == 1
    assert f"Exact is starting on {url}\n" in capsys.readouterr().out


def test_run_refuses_a_short_secret_key_with_a_message(media_root):
    result = _cli(
        "run",
        db_url="postgresql+psycopg://nobody@127.0.0.1:1/x",
        media_root=media_root,
        extra_env={"EXACT_SECRET_KEY": "too-short-secret"},
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: EXACT_SECRET_KEY must be at least 32 characters long (it has 16)")
