"""Exact: a dashboard for explainable-AI benchmark challenges (service layer)."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
