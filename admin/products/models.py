"""Catalogue data owned by the admin service."""

from django.core.validators import URLValidator
from django.db import models
from django_prometheus.models import ExportModelOperationsMixin

# Images are shown in browsers: only web URLs.
image_url_validator = URLValidator(schemes=["http", "https"])


class Product(ExportModelOperationsMixin("product"), models.Model):
    """A product; every change bumps version and is published as an event."""

    title = models.CharField(max_length=200)
    image = models.URLField(max_length=500, validators=[image_url_validator])
    # Written only by the consumer from main's like events (absolute count + sequence).
    likes = models.IntegerField(default=0)
    likes_seq = models.IntegerField(default=0)
    version = models.IntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("id",)
        # What the catalogue sorts by (products.catalogue), id breaking ties.
        indexes = [
            models.Index(fields=["title", "id"], name="product_title_id"),
            models.Index(fields=["likes", "id"], name="product_likes_id"),
            models.Index(fields=["created_at", "id"], name="product_created_id"),
        ]

    def __str__(self):
        return f"{self.title} (#{self.pk})"


class User(models.Model):
    """A shop user (not an account: /api/user picks a random one)."""

    name = models.CharField(max_length=200)
    email = models.EmailField(max_length=254, unique=True)

    class Meta:
        ordering = ("id",)
        # Not "users": the Django admin lists the staff accounts (auth's users) under that name.
        verbose_name = "shop user"

    def __str__(self):
        return f"{self.name} <{self.email}>"
