"""Notification receivers are validated, added, removed and tested by one service
(services/receivers.py); the 消息通知 page only parses the form and shows the answer."""
from __future__ import annotations

import pytest

from patrol.extensions import db
from patrol.models import Community, Company, Delivery, NotifyEndpoint, User, utcnow
from patrol.services import receivers


def test_every_problem_is_listed_and_nothing_is_added(app, world):
    with app.app_context():
        staff = db.session.get(User, world.staff_a)
        with pytest.raises(receivers.ReceiverInvalid) as refused:
            receivers.add_receiver(actor=staff, name="x" * 61, kind="json",
                                   target="ftp://example.invalid/x", events=["nonsense"],
                                   owner=None, email_enabled=False)
        assert refused.value.errors == {"name": "name", "target": "bad_url",
                                        "events": "no_events", "owner": "bad_owner"}
        with pytest.raises(receivers.ReceiverInvalid) as refused:
            receivers.add_receiver(actor=staff, name="邮件", kind="email",
                                   target="a@example.invalid", events=["daily"],
                                   owner=db.session.get(Community, world.ca), email_enabled=False)
        assert refused.value.errors == {"kind": "no_smtp"}
        with pytest.raises(receivers.ReceiverInvalid) as refused:
            receivers.add_receiver(actor=staff, name="群", kind="fax", target="1",
                                   events=["daily"], owner=db.session.get(Company, world.x),
                                   email_enabled=True)
        assert refused.value.errors == {"kind": "bad_kind"}
        assert db.session.scalar(db.select(db.func.count()).select_from(NotifyEndpoint)) == 0


def test_add_test_and_remove(app, world):
    with app.app_context():
        mgr = db.session.get(User, world.mgr_x)
        endpoint = receivers.add_receiver(
            actor=mgr, name=" 物业群 ", kind="json", target=" https://hooks.example.invalid/h ",
            events=["new_item", "nonsense", "overdue"], owner=db.session.get(Company, world.x),
            email_enabled=False)
        assert (endpoint.name, endpoint.target, endpoint.events, endpoint.company_id,
                endpoint.community_id, endpoint.created_by_id) == (
            "物业群", "https://hooks.example.invalid/h", ["new_item", "overdue"], world.x, None,
            world.mgr_x)
        delivery = receivers.queue_test_message(endpoint, actor=mgr, now=utcnow(),
                                                base_url="http://patrol.test", locale="zh")
        assert (delivery.event, delivery.payload["title"]) == ("test", "【小区巡查】测试消息")
        assert "物业群" in delivery.payload["lines"][0]
        receivers.remove_receiver(endpoint)
        db.session.commit()
        assert db.session.scalar(db.select(db.func.count()).select_from(NotifyEndpoint)) == 0
        assert db.session.scalar(db.select(db.func.count()).select_from(Delivery)) == 0
