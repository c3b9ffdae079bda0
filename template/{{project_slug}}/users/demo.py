"""Demo users for `manage.py seed_demo`: the documented demo account and bulk users."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import CommandError

from .models import User

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo-Password-2026"  # noqa: S105  (documented demo account)
# Rows are written in batches of this many.
BATCH_SIZE = 5000


def refuse_production(*, allow_production: bool) -> None:
    """Stop unless DEBUG is on or the caller insists: the demo password is public."""
    if settings.DEBUG or allow_production:
        return
    raise CommandError(
        f"seed_demo creates {DEMO_EMAIL} with the password printed in the README, so it "
        "runs only with DEBUG on (local settings). To load demo data into this database "
        "anyway, pass --allow-production."
    )


def demo_account() -> User:
    """The demo account, created with DEMO_PASSWORD if it does not exist yet.

    Its address counts as confirmed, so it logs in whatever ACCOUNT_EMAIL_VERIFICATION says.
    """
    demo, created = User.objects.get_or_create(
        email=DEMO_EMAIL,
        defaults={"first_name": "Demo", "last_name": "User", "email_verified": True},
    )
    if created:
        demo.set_password(DEMO_PASSWORD)
        demo.save(update_fields=["password"])
    return demo


def seed_users(count: int, prefix: str = "user") -> list[User]:
    """Users {prefix}0@example.com ... that do not exist yet, without a usable password."""
    existing = set(User.objects.filter(email__startswith=prefix).values_list("email", flat=True))
    new_users = [
        User(email=email, first_name=prefix.title(), last_name=str(i))
        for i in range(count)
        if (email := f"{prefix}{i}@example.com") not in existing
    ]
    for new_user in new_users:
        new_user.set_unusable_password()
    return User.objects.bulk_create(new_users, batch_size=BATCH_SIZE)
