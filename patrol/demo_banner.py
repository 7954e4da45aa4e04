"""Printed by `make run`: the demo accounts and a fresh sign-in link for the volunteer."""
from . import create_app
from .extensions import db
from .lifecycle import Role
from .models import User
from .seed import DEMO_PASSWORD, DEMO_USERS
from .services import accounts


def main():
    app = create_app()
    with app.app_context():
        base = app.config["BASE_URL"].rstrip("/")
        print("\n" + "=" * 72)
        print(f"小区巡查 Patrol demo district — open {base}/login")
        print("-" * 72)
        for username, name, role, _title, _ in DEMO_USERS:
            if role == Role.VOLUNTEER:
                user = db.session.execute(
                    db.select(User).where(User.username == username)).scalar_one()
                token = accounts.create_invite(user, None, app.config["INVITE_LIFETIME"])
                db.session.commit()
                print(f"  {role:<10} {name:<14} sign-in link (one use): {base}/invite/{token}")
            else:
                print(f"  {role:<10} {name:<14} user {username!r:<12} password {DEMO_PASSWORD!r}")
        print("=" * 72 + "\n", flush=True)


if __name__ == "__main__":
    main()
