"""Object-level permissions: who may see or act on which compound and item.

The rules are pure functions over plain attributes, so they are testable
without a database; `*_filter()` give the same rules as SQL for list queries.
"""
from sqlalchemy import false, true

from .lifecycle import Role


def _role(user):
    return Role(user.role)


def can_see_compound(user, compound) -> bool:
    role = _role(user)
    if role == Role.ADMIN:
        return True
    if role in (Role.VOLUNTEER, Role.STAFF):
        return user.community_id is not None and compound.community_id == user.community_id
    if role == Role.MANAGER:
        return user.company_id is not None and compound.company_id == user.company_id
    if role == Role.COMMITTEE:
        return user.compound_id is not None and compound.id == user.compound_id
    return False


def can_see_item(user, item) -> bool:
    """Items carry their compound's community and company (set when reported)."""
    role = _role(user)
    if role == Role.ADMIN:
        return True
    if role in (Role.VOLUNTEER, Role.STAFF):
        return user.community_id is not None and item.community_id == user.community_id
    if role == Role.MANAGER:
        return user.company_id is not None and item.company_id == user.company_id
    if role == Role.COMMITTEE:
        return user.compound_id is not None and item.compound_id == user.compound_id
    return False


def can_report(user, compound) -> bool:
    return _role(user) in (Role.VOLUNTEER, Role.STAFF) and can_see_compound(user, compound)


def can_act_on_item(user, item) -> bool:
    """Committee members are read-only; everyone else acts where they can see."""
    return _role(user) != Role.COMMITTEE and can_see_item(user, item)


def can_manage_community(user, community_id) -> bool:
    role = _role(user)
    return role == Role.ADMIN or (role == Role.STAFF and user.community_id == community_id)


def compound_filter(user, Compound):
    role = _role(user)
    if role == Role.ADMIN:
        return true()
    if role in (Role.VOLUNTEER, Role.STAFF) and user.community_id:
        return Compound.community_id == user.community_id
    if role == Role.MANAGER and user.company_id:
        return Compound.company_id == user.company_id
    if role == Role.COMMITTEE and user.compound_id:
        return Compound.id == user.compound_id
    return false()


def item_filter(user, Item):
    role = _role(user)
    if role == Role.ADMIN:
        return true()
    if role in (Role.VOLUNTEER, Role.STAFF) and user.community_id:
        return Item.community_id == user.community_id
    if role == Role.MANAGER and user.company_id:
        return Item.company_id == user.company_id
    if role == Role.COMMITTEE and user.compound_id:
        return Item.compound_id == user.compound_id
    return false()
