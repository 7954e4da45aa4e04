"""A small world with two of everything, so permission tests can look for leaks."""
from __future__ import annotations

import io
from types import SimpleNamespace

from PIL import Image
from werkzeug.security import generate_password_hash

from patrol.extensions import db
from patrol.models import Building, Community, Company, Compound, Team, User

PASSWORD = "test-password-1"
_HASH = generate_password_hash(PASSWORD)  # hashed once: scrypt is slow by design


def jpeg_bytes(size=(640, 480), color=(200, 60, 40), **save_kwargs) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "JPEG", **save_kwargs)
    return out.getvalue()


def build_world():
    """Community A with compounds A1 (company X) and A2 (company Y);
    community B with compound B1 (company X). One user of each role per place."""
    ca, cb = Community(name="社区A"), Community(name="社区B")
    x, y = Company(name="物业X"), Company(name="物业Y")
    a1 = Compound(name="小区A1", community=ca, company=x)
    a2 = Compound(name="小区A2", community=ca, company=y)
    b1 = Compound(name="小区B1", community=cb, company=x)
    for c in (a1, a2, b1):
        c.buildings = [Building(name="1栋", sort_key=1), Building(name="2栋", sort_key=2)]
    db.session.add_all([ca, cb, x, y, a1, a2, b1])
    db.session.flush()
    team = Team(name="A队", community_id=ca.id, compounds=[a1, a2])
    db.session.add(team)

    def user(username, role, **kw):
        u = User(username=username, display_name=username, role=role, **kw)
        if role != "volunteer":
            u.password_hash = _HASH
        db.session.add(u)
        return u

    w = SimpleNamespace(ca=ca, cb=cb, x=x, y=y, a1=a1, a2=a2, b1=b1, team=team)
    w.vol_a = user("vol_a", "volunteer", community=ca, team=team, title="片长")
    w.vol_b = user("vol_b", "volunteer", community=cb, title="志愿者")
    w.staff_a = user("staff_a", "staff", community=ca)
    w.staff_b = user("staff_b", "staff", community=cb)
    w.mgr_x = user("mgr_x", "manager", company=x)
    w.mgr_y = user("mgr_y", "manager", company=y)
    w.com_a1 = user("com_a1", "committee", compound=a1)
    w.com_a2 = user("com_a2", "committee", compound=a2)
    w.admin = user("admin", "admin")
    db.session.commit()
    # Return ids, not live objects: tests use them across app contexts.
    return SimpleNamespace(**{k: v.id for k, v in vars(w).items()})
