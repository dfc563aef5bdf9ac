"""JSON shapes of the catalogue API, with strict input validation."""

from __future__ import annotations

from typing import ClassVar

from rest_framework import serializers

from products.models import Product, User, image_url_validator


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers, booleans, lists and objects instead of coercing them."""

    default_error_messages: ClassVar[dict[str, str]] = {
        "not_a_string": "Must be a string.",
        "not_utf8": "Must be valid Unicode text.",
    }

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        try:
            data.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates cannot be stored
            self.fail("not_utf8")
        return super().to_internal_value(data)


class StrictURLField(StrictCharField):
    """An http(s) URL as a strict string."""

    default_error_messages: ClassVar[dict[str, str]] = {"invalid": "Enter a valid http or https URL."}

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.validators.append(image_url_validator)


class ProductSerializer(serializers.ModelSerializer):
    """A product as the API shows it; only title and image are writable."""

    title = StrictCharField(max_length=200, help_text="Product title, 1-200 characters.")
    image = StrictURLField(max_length=500, help_text="http(s) image URL, at most 500 characters.")

    class Meta:
        model = Product
        fields = (
            "id",
            "title",
            "image",
            "likes",
            "version",
            "created_at",
            "updated_at",
        )
        read_only_fields = ("id", "likes", "version", "created_at", "updated_at")

    def to_internal_value(self, data):
        # Refuse read-only and unknown keys loudly instead of silently ignoring them.
        if isinstance(data, dict):
            errors = {}
            for key in data:
                if key in self.Meta.read_only_fields:
                    errors[key] = ["This field is read-only."]
                elif key not in self.fields:
                    errors[key] = ["Unknown field."]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


class UserIdSerializer(serializers.Serializer):
    """A randomly chosen user id."""

    id = serializers.IntegerField()


class UserSerializer(serializers.ModelSerializer):
    """A shop user."""

    class Meta:
        model = User
        fields = ("id", "name", "email")
