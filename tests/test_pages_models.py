"""The models of a challenge in the pages (AppTest): the challenge page's Models part for every role (accuracy,
downloads, the PyTorch snippet that really loads the download), progress while training, failures summarised for
participants, and the organisers' upload on the manage page. Services: tests/test_trained_models.py."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa

from exact import evaluation_sets, networks, trained_models
from exact.challenges import ChallengeForm, EvaluationChoice, create_challenge
from exact.storage import MediaStorage
from exact.trained_models import TrainingPlan
from exact.xaitris import BenchmarkSpec
from tests.conftest import make_user
from tests.pages_helpers import open_page

MAX_BYTES = 64 << 20
CHALLENGE = "paper8"


@pytest.fixture
def stores(media_root, private_root):
    return MediaStorage(media_root, max_bytes=MAX_BYTES), MediaStorage(private_root, max_bytes=MAX_BYTES)


@pytest.fixture
def people(db):
    return {
        "superuser": make_user(db, "root", superuser=True),  # closes the first-run set-up
        "organiser": make_user(db, "olivia", staff=True),
        "participant": make_user(db, "pat"),
    }


@pytest.fixture
def challenge(db, stores, people):
    media, private = stores
    spec = BenchmarkSpec("rigid", size=8, alpha=0.5, n_samples=200, seed=3)
    create_challenge(
        db,
        media,
        people["organiser"].id,
        ChallengeForm("Paper 8x8", "desc", CHALLENGE),
        {},
        evaluation=EvaluationChoice(
            prepared=evaluation_sets.prepare_benchmark(spec),
            private=private,
            training=TrainingPlan(explained="CNN8by8", epochs=2, seed=1),
        ),
    )
    return CHALLENGE


_open = open_page


def _texts(at) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [e.value for e in at.error]
    return "\n".join(str(p) for p in parts)


def test_models_waiting_to_be_trained_say_so(app, db, people, challenge):
    at = _open(app, db, None, "app_pages/challenge.py", challenge=challenge)
    assert any(h.value == "Models" for h in at.subheader)
    text = _texts(at)
    assert "This challenge asks you to explain **Convolutional network (8x8)**" in text
    assert text.count("Waiting to be trained") == 2
    assert "Model: see Models below" in [b.label for b in at.button], "not 'Model: not provided'"
    # Scores under different protocols are not comparable, so the page says which one this challenge uses.
    assert "**Protocol:** Exact's own protocol: α = 0.5, 200 samples, 70/15/15 split" in text


@pytest.mark.parametrize("role", [None, "participant", "organiser"])
def test_every_role_sees_accuracy_downloads_and_a_snippet_that_loads_the_download(
    app, db, stores, people, challenge, role, tmp_path, monkeypatch
):
    media, private = stores
    while trained_models.train_next(db, media, private) is not None:
        pass
    with db.connect() as conn:
        accuracies = dict(conn.execute(sa.text("SELECT architecture, test_accuracy FROM exact_model")).all())
    at = _open(app, db, people[role] if role else None, "app_pages/challenge.py", challenge=challenge)
    text = _texts(at)
    for accuracy in accuracies.values():
        assert f"Test accuracy {100 * accuracy:.1f} %" in text
    labels = [b.label for b in at.get("download_button")]
    assert labels.count("Download Weights (safetensors)") == 2 and labels.count("Download Graph (ONNX)") == 2
    snippets = [c.value for c in at.code if "safetensors.torch.load_file" in c.value]
    assert len(snippets) == 2
    # Run the page's own snippet, as a participant would, against the file the page offers.
    model = next(m for m in trained_models.list_models(db, None, challenge) if m.architecture == "CNN8by8")
    (tmp_path / model.weights_file_name).write_bytes(
        trained_models.model_file(db, media, challenge, model.id, "weights").read_bytes()
    )
    monkeypatch.chdir(tmp_path)
    snippet = next(s for s in snippets if "Conv2d" in s)
    namespace: dict = {}
    exec(snippet, namespace)  # noqa: S102 - the page's own text, run as its reader would
    reference = networks.load_safetensors((tmp_path / model.weights_file_name).read_bytes(), "CNN8by8", 8)
    inputs = np.random.default_rng(0).normal(size=(5, 8, 8)).astype(np.float32)
    import torch

    with torch.no_grad():
        theirs = namespace["model"](torch.from_numpy(inputs[:, None])).numpy()
    np.testing.assert_allclose(theirs, networks.predict(reference, inputs), atol=1e-6)


def test_a_failed_training_shows_its_reason_to_organisers_only(app, db, stores, people, challenge):
    with db.transaction() as conn:
        conn.execute(
            sa.text("UPDATE exact_model SET status = 'failed', error = 'Out of memory on worker 3' WHERE id = "
                    "(SELECT min(id) FROM exact_model)")
        )  # fmt: skip
    organiser = _texts(_open(app, db, people["organiser"], "app_pages/challenge.py", challenge=challenge))
    participant = _texts(_open(app, db, people["participant"], "app_pages/challenge.py", challenge=challenge))
    assert "Out of memory on worker 3" in organiser
    assert "Out of memory" not in participant and "the organisers have been told why" in participant


def test_the_upload_section_is_for_the_challenges_organisers(app, db, people, challenge):
    organiser = _open(app, db, people["organiser"], "app_pages/manage_challenge.py", challenge=challenge)
    assert any(e.label == "Model to explain" for e in organiser.expander)
    assert any(f.label == "Model file" for f in organiser.get("file_uploader"))
    other = _open(app, db, make_user(db, "oscar", staff=True), "app_pages/manage_challenge.py", challenge=challenge)
    assert not any(e.label == "Model to explain" for e in other.expander)
