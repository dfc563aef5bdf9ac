"""Django admin for products and users; product changes go through products.services."""

from django.contrib import admin
from django.db import models

from products import services
from products.models import Product, User


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    """Products; saving or deleting here writes outbox events like the API does."""

    list_display = ("id", "title", "image", "likes", "version", "updated_at")
    search_fields = ("title",)
    readonly_fields = ("likes", "likes_seq", "version", "created_at", "updated_at")
    fields = ("title", "image", *readonly_fields)
    ordering = ("id",)
    # Django 6 changes the default; say it now (and silence the transition warning).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def save_model(self, request, obj, form, change):
        if change:
            saved = services.update_product(obj.pk, title=obj.title, image=obj.image)
        else:
            saved = services.create_product(title=obj.title, image=obj.image)
        # The admin keeps using obj (log entry, redirect): mirror what was saved.
        obj.pk = saved.pk
        for name in ("likes", "likes_seq", "version", "created_at", "updated_at"):
            setattr(obj, name, getattr(saved, name))

    def delete_model(self, request, obj):
        services.delete_product(obj.pk)

    def delete_queryset(self, request, queryset):
        for product_id in queryset.values_list("pk", flat=True):
            services.delete_product(product_id)


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    """Shop users."""

    list_display = ("id", "name", "email")
    search_fields = ("name", "email")
