"""The two models of the Django app's ``api`` label, at the state the schema contract describes."""

from django.db import models


def challenge_upload_path(instance: "Challenge", filename: str) -> str:
    return f"{instance.challenge_id}/{filename}"


class Challenge(models.Model):
    challenge_id = models.CharField(max_length=100, unique=True)
    title = models.CharField(max_length=100)
    description = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    mlmodel = models.FileField(upload_to=challenge_upload_path, default="default_mlmodel.txt")
    dataset = models.FileField(upload_to=challenge_upload_path, default="default_dataset.txt")
    xaimethod = models.FileField(upload_to=challenge_upload_path, default="default_xaimethod.txt")


class Score(models.Model):
    username = models.CharField(max_length=150)
    challenge_id = models.CharField(max_length=100)
    score = models.FloatField()
    created_at = models.DateTimeField(auto_now_add=True)
