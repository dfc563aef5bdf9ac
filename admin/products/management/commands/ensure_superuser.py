"""Create the admin superuser from the environment if it does not exist."""

import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    """manage.py ensure_superuser"""

    help = "Create (once) a superuser from ADMIN_USERNAME/ADMIN_PASSWORD/ADMIN_EMAIL (default admin/admin)."

    def handle(self, *args, **options):
        username = os.environ.get("ADMIN_USERNAME") or "admin"
        password = os.environ.get("ADMIN_PASSWORD") or "admin"
        email = os.environ.get("ADMIN_EMAIL") or "admin@example.com"
        user_model = get_user_model()
        user = user_model.objects.filter(username=username).first()
        if user is None:
            user_model.objects.create_superuser(username=username, email=email, password=password)
            self.stdout.write(f"created superuser {username!r} with password {password!r}")
        else:
            if not (user.is_staff and user.is_superuser and user.is_active):
                user.is_staff = user.is_superuser = user.is_active = True
                user.save(update_fields=["is_staff", "is_superuser", "is_active"])
            # The password is left alone: someone may have changed it on purpose.
            self.stdout.write(f"superuser {username!r} exists (password {password!r} unless changed)")
