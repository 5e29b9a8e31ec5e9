"""The one ``api`` migration of a 2025-07 deployment: upstream had deleted its migration files and its Dockerfile
runs ``makemigrations`` before ``migrate``, so this single generated migration creates every 2025-07 column."""

from django.db import migrations, models

import api.models


class Migration(migrations.Migration):
    initial = True

    dependencies: list[tuple[str, str]] = []

    operations = [
        migrations.CreateModel(
            name="Challenge",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("challenge_id", models.CharField(editable=False, max_length=100, unique=True)),
                ("title", models.CharField(max_length=100)),
                ("description", models.TextField()),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("created_by", models.CharField(default="admin", max_length=150)),
                ("closes_on", models.DateTimeField(blank=True, null=True)),
                ("dataset", models.FileField(blank=True, null=True, upload_to=api.models.dataset_upload_path)),
                ("mlmodel", models.FileField(blank=True, null=True, upload_to=api.models.model_upload_path)),
                ("xaimethod", models.FileField(blank=True, null=True, upload_to=api.models.xai_upload_path)),
            ],
        ),
        migrations.CreateModel(
            name="Score",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("username", models.CharField(max_length=150)),
                ("challenge_id", models.CharField(max_length=100)),
                ("score", models.FloatField(blank=True, null=True)),
                ("emd_score", models.FloatField(blank=True, null=True)),
                ("emd_std", models.FloatField(blank=True, null=True)),
                ("ima_score", models.FloatField(blank=True, null=True)),
                ("ima_std", models.FloatField(blank=True, null=True)),
                ("method_name", models.CharField(blank=True, max_length=100, null=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("pending", "Pending"),
                            ("running", "Running"),
                            ("completed", "Completed"),
                            ("failed", "Failed"),
                        ],
                        default="completed",
                        max_length=20,
                    ),
                ),
                ("error_message", models.TextField(blank=True, null=True)),
            ],
        ),
    ]
