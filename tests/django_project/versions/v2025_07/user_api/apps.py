from django.apps import AppConfig


class UserApiConfig(AppConfig):
    name = "user_api"
    default_auto_field = "django.db.models.BigAutoField"
