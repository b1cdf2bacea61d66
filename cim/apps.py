from django.apps import AppConfig


class CimConfig(AppConfig):
    name = "cim"
    verbose_name = "CIM"
