"""Storage rows. This issue brings the OS catalogue that templates and ISOs will reference."""
from __future__ import annotations

import uuid

from django.db import models


class OsCategory(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=255, unique=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "OS categories"

    def __str__(self) -> str:
        return self.name


class OsType(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    description = models.CharField(max_length=255, unique=True)
    category = models.ForeignKey(OsCategory, on_delete=models.PROTECT, related_name="os_types")
    is_user_defined = models.BooleanField(default=False)

    class Meta:
        ordering = ["description"]

    def __str__(self) -> str:
        return self.description
