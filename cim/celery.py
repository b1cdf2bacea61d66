import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cim.settings")

# DjangoTask gives every task delay_on_commit(): work is queued only once the
# transaction that asked for it has committed, so a worker never looks for rows
# that do not exist yet.
app = Celery("cim", task_cls="celery.contrib.django.task:DjangoTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
