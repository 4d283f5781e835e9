"""The framework's own rows: audit events, async jobs and stored configuration values."""
from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class EventLevel(models.TextChoices):
    INFO = "INFO"
    WARN = "WARN"
    ERROR = "ERROR"


class EventState(models.TextChoices):
    CREATED = "Created"
    SCHEDULED = "Scheduled"
    STARTED = "Started"
    COMPLETED = "Completed"


class EventQuerySet(models.QuerySet):
    def visible_to(self, caller) -> "EventQuerySet":
        from accounts.access import scope_filter

        return self.filter(scope_filter(caller, account_field="account", domain_field="domain"))


class Event(models.Model):
    """One audit record per mutating action (CloudStack's event table). Names are copied so the
    record survives the deletion of what it names."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    type = models.CharField(max_length=64, db_index=True)
    level = models.CharField(max_length=8, choices=EventLevel.choices, default=EventLevel.INFO)
    state = models.CharField(max_length=16, choices=EventState.choices, default=EventState.COMPLETED)
    description = models.TextField()
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    account = models.ForeignKey("accounts.Account", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    domain = models.ForeignKey("accounts.Domain", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    username = models.CharField(max_length=255, blank=True, default="")
    account_name = models.CharField(max_length=255, blank=True, default="")
    domain_path = models.CharField(max_length=1024, blank=True, default="")
    resource_type = models.CharField(max_length=64, blank=True, default="")
    resource_uuid = models.CharField(max_length=64, blank=True, default="")
    resource_name = models.CharField(max_length=255, blank=True, default="")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = EventQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"{self.type}: {self.description}"


class JobStatus(models.IntegerChoices):
    PENDING = 0, "Pending"
    SUCCEEDED = 1, "Succeeded"
    FAILED = 2, "Failed"


class AsyncJobQuerySet(models.QuerySet):
    def visible_to(self, caller) -> "AsyncJobQuerySet":
        from accounts.access import scope_filter

        return self.filter(scope_filter(caller, account_field="account", domain_field="account__domain"))


class AsyncJob(models.Model):
    """The source of truth for a long operation: created with the request, run by an RQ worker,
    answered by queryAsyncJobResult."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    command = models.CharField(max_length=128)
    params = models.JSONField(default=dict)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    account = models.ForeignKey("accounts.Account", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.IntegerField(choices=JobStatus.choices, default=JobStatus.PENDING, db_index=True)
    result_code = models.IntegerField(default=0)
    result_type = models.CharField(max_length=16, blank=True, default="")
    result = models.JSONField(null=True, blank=True)
    instance_type = models.CharField(max_length=64, blank=True, default="")
    instance_uuid = models.CharField(max_length=64, blank=True, default="")
    progress = models.IntegerField(default=0)
    progress_text = models.CharField(max_length=255, blank=True, default="")
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    started = models.DateTimeField(null=True, blank=True)
    completed = models.DateTimeField(null=True, blank=True)

    objects = AsyncJobQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["instance_type", "instance_uuid"])]

    def __str__(self) -> str:
        return f"{self.command} {self.uuid} ({self.get_status_display()})"


class ConfigurationValue(models.Model):
    """A value set for a global setting, globally or for one scope object (account, domain,
    zone, cluster). Definitions, types and defaults live in code: portal.config."""

    name = models.CharField(max_length=255)
    scope = models.CharField(max_length=16, default="global")
    scope_uuid = models.CharField(max_length=64, blank=True, default="")
    value = models.TextField()
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["name", "scope", "scope_uuid"], name="configuration_unique_scope"),
        ]

    def __str__(self) -> str:
        return f"{self.name}={self.value} ({self.scope})"
