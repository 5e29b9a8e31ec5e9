"""In Chromium: a challenge whose models the live server's own training process trains. A visitor watches them go
from waiting to ready (refreshing), reads their accuracy and the protocol, downloads the weights and the ONNX graph
through the page's buttons, and the downloads load in PyTorch and onnxruntime with the same outputs."""

from __future__ import annotations

import numpy as np
import pytest
from playwright.sync_api import Page, expect

from exact import evaluation_sets, networks
from exact.challenges import ChallengeForm, EvaluationChoice, create_challenge
from exact.storage import MediaStorage
from exact.trained_models import TrainingPlan
from exact.xaitris import BenchmarkSpec
from tests.browser.test_journey import go, main_area
from tests.conftest import make_user
from tests.polling import wait_until

pytestmark = pytest.mark.browser
MAX_BYTES = 64 << 20


def test_a_visitor_downloads_the_trained_model_and_it_loads(start_live_app, browser_page: Page, tmp_path) -> None:
    app = start_live_app(env={"EXACT_WORKER": "on", "EXACT_SCORING_PROCESSES": "1"})
    make_user(app.db, "root", superuser=True)
    organiser = make_user(app.db, "olivia", staff=True)
    media = MediaStorage(app.media_root, max_bytes=MAX_BYTES)
    private = MediaStorage(app.private_root, max_bytes=MAX_BYTES)
    spec = BenchmarkSpec.paper("rigid", 8, "white", seed=12, n_samples=400)
    create_challenge(
        app.db, media, organiser.id, ChallengeForm("Explain the CNN", "Attribute its decisions.", "explain-cnn"), {},
        evaluation=EvaluationChoice(
            prepared=evaluation_sets.prepare_benchmark(spec), private=private,
            training=TrainingPlan("CNN8by8", epochs=3),
        ),
    )  # fmt: skip
    page = browser_page
    go(page, app, "/challenge?challenge=explain-cnn")
    main = main_area(page)
    expect(main.get_by_role("heading", name="Models")).to_be_visible()
    expect(main.get_by_text("XAI-TRIS paper protocol (Clark et al. 2024)")).to_be_visible()

    def ready() -> bool:
        with app.db.connect() as conn:
            return conn.exec_driver_sql("SELECT bool_and(status = 'ready') FROM exact_model").scalar_one()

    wait_until(ready, "the server's training process to train both models")
    page.reload()
    expect(main.get_by_text("Test accuracy", exact=False)).to_have_count(2)
    expect(main.get_by_text("the model to explain")).to_be_visible()

    downloads = {}
    for label in ("Download Weights (safetensors)", "Download Graph (ONNX)"):
        with page.expect_download() as info:
            main.get_by_role("button", name=label).last.click()  # the CNN is listed after the MLP
        target = tmp_path / info.value.suggested_filename
        info.value.save_as(target)
        downloads[label] = target
    assert downloads["Download Weights (safetensors)"].name == "explain-cnn-CNN8by8.safetensors"
    model = networks.load_safetensors(downloads["Download Weights (safetensors)"].read_bytes(), "CNN8by8", 8)
    inputs = np.random.default_rng(0).normal(size=(4, 8, 8)).astype(np.float32)
    graph = downloads["Download Graph (ONNX)"].read_bytes()
    np.testing.assert_allclose(networks.predict_onnx(graph, inputs), networks.predict(model, inputs), atol=1e-5)
