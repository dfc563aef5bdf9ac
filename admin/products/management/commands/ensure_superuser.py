"""Create the admin superuser from the environment if it does not exist; never log its password."""

import os

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from eventbus.runtime import weak_secret_problems

# make run's superuser. Production refuses it, and any password the validators refuse.
DEVELOPMENT_PASSWORD = "admin"  # noqa: S105 - the documented development default, refused in production


class Command(BaseCommand):
    """manage.py ensure_superuser"""

    help = (
        "Create (once) a superuser from ADMIN_USERNAME/ADMIN_PASSWORD/ADMIN_EMAIL (development default "
        "admin/admin). In production the password must pass AUTH_PASSWORD_VALIDATORS."
    )

    def handle(self, *args, **options):
        username = os.environ.get("ADMIN_USERNAME") or "admin"
        password = os.environ.get("ADMIN_PASSWORD") or DEVELOPMENT_PASSWORD
        email = os.environ.get("ADMIN_EMAIL") or "admin@example.com"
        user_model = get_user_model()
        user = user_model.objects.filter(username=username).first()
        if settings.PRODUCTION:
            self._refuse_weak(password, user_model(username=username, email=email))
        if user is None:
            user_model.objects.create_superuser(username=username, email=email, password=password)
            self.stdout.write(f"created superuser {username!r} (password from ADMIN_PASSWORD)")
        else:
            if not (user.is_staff and user.is_superuser and user.is_active):
                user.is_staff = user.is_superuser = user.is_active = True
                user.save(update_fields=["is_staff", "is_superuser", "is_active"])
            # The password is left alone: someone may have changed it on purpose.
            self.stdout.write(f"superuser {username!r} exists (its password is left as it is)")

    @staticmethod
    def _refuse_weak(password, user):
        """Raise CommandError when production would get a default, placeholder or invalid password."""
        problems = []
        if password == DEVELOPMENT_PASSWORD or weak_secret_problems({"ADMIN_PASSWORD": password}):
            problems.append("it is the development default or a placeholder from .env.example")
        try:
            validate_password(password, user)
        except ValidationError as exc:
            problems.extend(exc.messages)
        if problems:
            raise CommandError(
                "ADMIN_PASSWORD is refused in production: "
                + " ".join(problems)
                + " Set a strong ADMIN_PASSWORD."
            )
