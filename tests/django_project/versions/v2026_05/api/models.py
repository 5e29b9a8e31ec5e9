"""The ``api`` models at upstream's 2026-05 state (upstream-schema-versions.md, "2026-05"): after migrations
0001_initial, 0002_auto_20260325_2147, 0003_challenge_creator and 0004_score_plot_base64."""

import uuid

from django.db import models

STATUS_CHOICES = [("pending", "Pending"), ("running", "Running"), ("completed", "Completed"), ("failed", "Failed")]


def _challenge_file(instance: "Challenge", kind: str, filename: str) -> str:
    """``challenges/<challenge_id>/<dataset|model|xai>/<file name>`` under the media root."""
    return f"challenges/{instance.challenge_id}/{kind}/{filename}"


def dataset_upload_path(instance: "Challenge", filename: str) -> str:
    return _challenge_file(instance, "dataset", filename)


def model_upload_path(instance: "Challenge", filename: str) -> str:
    return _challenge_file(instance, "model", filename)


def xai_upload_path(instance: "Challenge", filename: str) -> str:
    return _challenge_file(instance, "xai", filename)


class Score(models.Model):
    username = models.CharField(max_length=150)
    challenge_id = models.CharField(max_length=100)
    score = models.FloatField(null=True, blank=True)
    emd_score = models.FloatField(null=True, blank=True)
    emd_std = models.FloatField(null=True, blank=True)
    ima_score = models.FloatField(null=True, blank=True)
    ima_std = models.FloatField(null=True, blank=True)
    plot_base64 = models.TextField(null=True, blank=True)
    method_name = models.CharField(max_length=100, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=20, choices=STATUS_CHOICES, default="completed")
    error_message = models.TextField(null=True, blank=True)

    def save(self, *args, **kwargs):
        # Upstream keeps the legacy score and emd_score in step.
        if self.score is not None and self.emd_score is None:
            self.emd_score = self.score
        elif self.emd_score is not None:
            self.score = self.emd_score
        super().save(*args, **kwargs)

    @property
    def primary_score(self) -> float | None:
        return self.emd_score if self.emd_score is not None else self.score


class Challenge(models.Model):
    challenge_id = models.CharField(max_length=100, unique=True, editable=False)
    title = models.CharField(max_length=100)
    description = models.TextField()
    creator = models.CharField(max_length=150, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    dataset = models.FileField(upload_to=dataset_upload_path, null=True, blank=True)
    mlmodel = models.FileField(upload_to=model_upload_path, null=True, blank=True)
    xaimethod = models.FileField(upload_to=xai_upload_path, null=True, blank=True)

    def save(self, *args, **kwargs):
        if not self.challenge_id:
            self.challenge_id = uuid.uuid4().hex
        super().save(*args, **kwargs)
