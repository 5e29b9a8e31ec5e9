"""A score's plot as base64 text, optional."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("api", "0003_challenge_creator")]

    operations = [
        migrations.AddField(model_name="score", name="plot_base64", field=models.TextField(blank=True, null=True)),
    ]
