"""Challenges service: organisers only, files and row as one unit, ids unique, listing with statistics."""

import threading

import pytest
import sqlalchemy as sa

from exact import challenges
from exact.challenges import ChallengeForm
from exact.errors import NotFound, PermissionDenied, ValidationError
from exact.storage import UploadedFile
from tests.conftest import make_user

FORM = ChallengeForm(title="Find the T", description="**Bold** text", challenge_id="find-the-t")


def _content(kind: str, name: str) -> bytes:
    """Plausible bytes for the file type (uploads are checked against their extension)."""
    if name.endswith(".onnx"):
        return b"\x08\x07" + kind.encode()
    return f"{kind},bytes\n1,2\n".encode()


def _files(**names):
    return {kind: UploadedFile(name, _content(kind, name)) for kind, name in names.items()}


def _media_files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _row_count(db):
    with db.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM api_challenge")).scalar_one()


def test_organiser_creates_challenge_with_files(db, storage, media_root):
    organiser = make_user(db, "olivia", staff=True)
    created = challenges.create_challenge(
        db, storage, organiser.id, FORM, _files(dataset="train data.csv", model="m.onnx", xai="template.py")
    )
    assert created.challenge_id == "find-the-t"
    assert created.files == {
        "dataset": "challenges/find-the-t/dataset/train_data.csv",
        "model": "challenges/find-the-t/model/m.onnx",
        "xai": "challenges/find-the-t/xai/template.py",
    }
    assert (media_root / created.files["dataset"]).read_bytes() == _content("dataset", "train data.csv")
    with db.connect() as conn:
        row = conn.execute(sa.text("SELECT mlmodel, dataset, xaimethod FROM api_challenge")).one()
    assert tuple(row) == (created.files["model"], created.files["dataset"], created.files["xai"])


def test_generated_id_from_title(db, storage):
    organiser = make_user(db, "olivia", staff=True)
    form = ChallengeForm(title="Saliency on MNIST: 2025 édition!", description="d")
    first = challenges.create_challenge(db, storage, organiser.id, form, {})
    second = challenges.create_challenge(db, storage, organiser.id, form, {})
    assert first.challenge_id == "saliency-on-mnist-2025-edition"
    assert (
        second.challenge_id.startswith("saliency-on-mnist-2025-edition-") and second.challenge_id != first.challenge_id
    )


@pytest.mark.parametrize("actor", ["anonymous", "participant", "inactive organiser"])
def test_non_organisers_are_refused_and_nothing_is_written(db, storage, media_root, actor):
    actor_id = {
        "anonymous": None,
        "participant": make_user(db, "pat").id,
        "inactive organiser": make_user(db, "gone", staff=True, active=False).id,
    }[actor]
    with pytest.raises(PermissionDenied):
        challenges.create_challenge(db, storage, actor_id, FORM, _files(dataset="d.csv"))
    assert _row_count(db) == 0 and _media_files(media_root) == []


def test_duplicate_id_is_a_clear_error_and_leaves_no_files(db, storage, media_root):
    organiser = make_user(db, "olivia", staff=True)
    challenges.create_challenge(db, storage, organiser.id, FORM, _files(dataset="d.csv"))
    before = _media_files(media_root)
    with pytest.raises(ValidationError, match="already taken"):
        challenges.create_challenge(db, storage, organiser.id, FORM, _files(dataset="other.csv"))
    assert _media_files(media_root) == before and _row_count(db) == 1


def test_concurrent_creates_of_one_id_give_one_success(db, storage, media_root):
    organiser = make_user(db, "olivia", staff=True)
    outcomes, barrier = [], threading.Barrier(2)

    def create(name):
        barrier.wait()
        try:
            challenges.create_challenge(db, storage, organiser.id, FORM, _files(dataset=name))
            outcomes.append("ok")
        except ValidationError as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=create, args=(f"{n}.csv",)) for n in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes)[0].startswith("The challenge id") and sorted(outcomes)[1] == "ok"
    assert _row_count(db) == 1 and len(_media_files(media_root)) == 1


def test_failed_commit_leaves_no_row_and_no_file(db, storage, media_root, monkeypatch):
    organiser = make_user(db, "olivia", staff=True)

    def failing_insert(conn, **kwargs):
        raise RuntimeError("database went away mid-insert")

    monkeypatch.setattr(challenges.challenges_sql, "insert", failing_insert)
    with pytest.raises(RuntimeError):
        challenges.create_challenge(db, storage, organiser.id, FORM, _files(dataset="d.csv", model="m.onnx"))
    assert _row_count(db) == 0 and _media_files(media_root) == []


@pytest.mark.parametrize(
    ("form", "message"),
    [
        (ChallengeForm(title="", description="d"), "Title is required"),
        (ChallengeForm(title="t" * 101, description="d"), "at most 100"),
        (ChallengeForm(title="t", description=""), "Description is required"),
        (ChallengeForm(title="t", description="d", challenge_id="bad id!"), "Challenge id"),
        (ChallengeForm(title="t", description="d", challenge_id="x" * 51), "at most 50"),
    ],
)
def test_bad_forms_change_nothing(db, storage, media_root, form, message):
    organiser = make_user(db, "olivia", staff=True)
    with pytest.raises(ValidationError, match=message):
        challenges.create_challenge(db, storage, organiser.id, form, _files(dataset="d.csv"))
    assert _row_count(db) == 0 and _media_files(media_root) == []


def test_bad_files_change_nothing(db, storage, media_root):
    organiser = make_user(db, "olivia", staff=True)
    with pytest.raises(ValidationError, match="not accepted"):
        challenges.create_challenge(db, storage, organiser.id, FORM, _files(dataset="d.csv", model="evil.exe"))
    with pytest.raises(ValidationError, match="empty"):
        challenges.create_challenge(db, storage, organiser.id, FORM, {"dataset": UploadedFile("d.csv", b"")})
    assert _row_count(db) == 0 and _media_files(media_root) == []


def test_path_tricks_in_file_names_stay_in_the_challenge_folder(db, storage, media_root):
    organiser = make_user(db, "olivia", staff=True)
    created = challenges.create_challenge(
        db, storage, organiser.id, FORM, _files(dataset="../../../etc/passwd.csv", xai="/abs/" + "n" * 200 + ".py")
    )
    assert created.files["dataset"] == "challenges/find-the-t/dataset/passwd.csv"
    assert created.files["xai"].startswith("challenges/find-the-t/xai/nnn") and created.files["xai"].endswith(".py")
    assert all(len(path) <= 100 for path in created.files.values())


def test_edit_replaces_files_after_commit(db, storage, media_root):
    organiser = make_user(db, "olivia", staff=True)
    created = challenges.create_challenge(db, storage, organiser.id, FORM, _files(dataset="d.csv", model="m.onnx"))
    edited = challenges.update_challenge(
        db,
        storage,
        organiser.id,
        created.challenge_id,
        ChallengeForm(title="New title", description="New description"),
        _files(dataset="d2.csv"),
        remove=frozenset({"model"}),
    )
    assert edited.title == "New title" and edited.files["model"] == ""
    assert _media_files(media_root) == ["challenges/find-the-t/dataset/d2.csv"]


def test_edit_refused_for_participants_and_unknown_ids(db, storage):
    organiser = make_user(db, "olivia", staff=True)
    participant = make_user(db, "pat")
    challenges.create_challenge(db, storage, organiser.id, FORM, {})
    with pytest.raises(PermissionDenied):
        challenges.update_challenge(db, storage, participant.id, "find-the-t", FORM, {})
    with pytest.raises(NotFound):
        challenges.update_challenge(db, storage, organiser.id, "nope", FORM, {})
    assert challenges.get_challenge(db, "find-the-t").title == "Find the T"


def test_list_search_sort_and_stats(db, storage):
    organiser = make_user(db, "olivia", staff=True)
    for cid, title in [("alpha", "Alpha saliency"), ("beta", "Beta 100% done"), ("gamma", "Gamma")]:
        challenges.create_challenge(db, storage, organiser.id, ChallengeForm(title, "desc", cid), {})
    with db.transaction() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO api_score (username, challenge_id, score, created_at) VALUES "
                "('u1','beta',0.5,now()),('u2','beta',0.9,now()),('u1','beta',0.7,now()),('u1','gamma',0.1,now())"
            )
        )
    by_participants = challenges.list_challenges(db, sort="participants").items
    assert [c.challenge_id for c in by_participants][:2] == ["beta", "gamma"]
    beta = by_participants[0]
    assert (beta.participants, beta.submissions, beta.best_score) == (2, 3, 0.9)
    assert [c.challenge_id for c in challenges.list_challenges(db, search="100%")] == ["beta"]
    assert [c.challenge_id for c in challenges.list_challenges(db, search="saliency")] == ["alpha"]
    assert challenges.list_challenges(db, search="_").items == []  # LIKE wildcards are taken literally
    assert [c.challenge_id for c in challenges.list_challenges(db, search="%")] == ["beta"]
    with pytest.raises(ValidationError):
        challenges.list_challenges(db, sort="id; DROP TABLE api_score")
