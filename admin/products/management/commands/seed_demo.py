"""Seed demo products and users (only when there are no products yet)."""

import logging

from django.core.management.base import BaseCommand
from django.db import transaction

from products import services
from products.models import Product, User

logger = logging.getLogger(__name__)

DEMO_PRODUCTS = [
    ("Mountain lake at dawn", "https://picsum.photos/seed/1/400/300"),
    ("City lights", "https://picsum.photos/seed/2/400/300"),
    ("Forest trail", "https://picsum.photos/seed/3/400/300"),
    ("Desert dunes", "https://picsum.photos/seed/4/400/300"),
    ("Harbour boats", "https://picsum.photos/seed/5/400/300"),
]
DEMO_USERS = [
    ("Ada Lovelace", "ada@example.com"),
    ("Grace Hopper", "grace@example.com"),
    ("Alan Turing", "alan@example.com"),
]


class Command(BaseCommand):
    """manage.py seed_demo"""

    help = "Create 5 demo products (through services, so events are published) and 3 users."

    def handle(self, *args, **options):
        with transaction.atomic():
            for name, email in DEMO_USERS:
                User.objects.get_or_create(email=email, defaults={"name": name})
            if Product.objects.exists():
                self.stdout.write("products exist; demo products not added")
                return
            for title, image in DEMO_PRODUCTS:
                services.create_product(title=title, image=image)
        self.stdout.write(f"added {len(DEMO_PRODUCTS)} demo products and {len(DEMO_USERS)} users")
