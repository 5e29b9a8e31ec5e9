"""The 'Models' part of a challenge page: the models to explain, their accuracy, files and a PyTorch snippet."""

from __future__ import annotations

import streamlit as st

from db.database import Database
from exact.storage import MediaStorage
from exact.trained_models import ChallengeModel, accuracy_text, model_file, pytorch_snippet

_STATUS = {
    "queued": "waiting to be trained",
    "training": "training",
    "ready": "ready",
    "failed": "failed",
}


def _heading(model: ChallengeModel) -> str:
    source = "trained by the server" if model.source == "trained" else "uploaded by the organisers"
    asked = " · **the model to explain**" if model.explained else ""
    return f"**{model.label}** ({source}){asked}"


def models_section(db: Database, media: MediaStorage, models: list[ChallengeModel]) -> None:
    if not models:
        return
    st.subheader("Models")
    explained = next((m for m in models if m.explained), None)
    if explained is not None:
        st.markdown(
            f"This challenge asks you to explain **{explained.label}**: attribute its decision (the true class) "
            "for every evaluation input. The other models are there to compare with."
        )
    for model in models:
        with st.container(border=True):
            st.markdown(_heading(model))
            if model.status == "ready":
                st.caption(
                    f"Test accuracy {accuracy_text(model.test_accuracy)}"
                    + (
                        f" · validation accuracy {accuracy_text(model.validation_accuracy)}"
                        if model.validation_accuracy is not None
                        else ""
                    )
                    + (f" · {model.epochs_done} epochs" if model.source == "trained" else "")
                )
                _downloads(db, media, model)
                snippet = pytorch_snippet(model)
                if snippet is not None:
                    st.code(snippet, language="python")
                elif model.has_onnx:
                    st.code(
                        "import onnxruntime, numpy as np\n"
                        f'session = onnxruntime.InferenceSession("{model.onnx_file_name}")\n'
                        'probabilities = session.run(None, {"x": inputs.astype(np.float32)[:, None]})[0]',
                        language="python",
                    )
            elif model.status == "failed":
                st.error(model.error or "Training failed.")
            else:
                progress = f" (epoch {model.epochs_done} of {model.epochs_total})" if model.status == "training" else ""
                st.caption(f"{_STATUS.get(model.status, model.status).capitalize()}{progress}; refresh to follow.")


def _downloads(db: Database, media: MediaStorage, model: ChallengeModel) -> None:
    columns = st.columns(2)
    for column, kind, label, name in (
        (columns[0], "weights", "Weights (safetensors)", model.weights_file_name),
        (columns[1], "onnx", "Graph (ONNX)", model.onnx_file_name),
    ):
        present = model.has_weights if kind == "weights" else model.has_onnx
        if not present:
            continue
        path = model_file(db, media, model.challenge_id, model.id, kind)
        column.download_button(
            f"Download {label}",
            data=path.read_bytes,  # read only when clicked
            file_name=name,
            key=f"download_model_{model.id}_{kind}",
            icon=":material/download:",
            on_click="ignore",
        )


def model_upload_section(
    db: Database, media: MediaStorage, private: MediaStorage, user_id: int, challenge_id: str
) -> None:
    """Organisers: upload the model the challenge asks to explain (ONNX, or safetensors of a declared architecture)."""
    from exact.trained_models import architecture_choices, upload_model
    from ui.feedback import user_errors

    with st.expander("Model to explain"):
        st.caption(
            "Upload an ONNX graph (standard operators only, input (n, 1, H, W) float32, output the two class "
            "probabilities) or safetensors weights of one of the paper's architectures. Pickled PyTorch files "
            "(.pt, .pth, .pkl) are refused: loading them runs code. Possible until the first participant submits."
        )
        upload = st.file_uploader("Model file", type=["onnx", "safetensors"], key=f"model_upload_{challenge_id}")
        architecture = st.selectbox(
            "Architecture of the safetensors weights",
            architecture_choices(),
            key=f"model_architecture_{challenge_id}",
            help="Ignored for ONNX: the graph describes itself.",
        )
        if st.button("Use this model", key=f"model_upload_button_{challenge_id}", disabled=upload is None):
            with user_errors("upload model"), st.spinner("Checking the model and computing its baselines…"):
                from exact.storage import UploadedFile

                saved = upload_model(
                    db,
                    media,
                    private,
                    user_id,
                    challenge_id,
                    UploadedFile(upload.name, upload.getvalue()),
                    architecture=architecture,
                )
                accuracy = accuracy_text(saved.test_accuracy)
                st.success(f"**{saved.label}** is now the model to explain (test accuracy {accuracy}).")
