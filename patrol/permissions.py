"""Object-level permissions: who may see or act on which compound and item.

The rules are pure functions over plain attributes, so they are testable
without a database; `*_filter()` give the same rules as SQL for list queries.
"""
from sqlalchemy import false, true

from .lifecycle import Role


def _role(user):
    return Role(user.role)


def _in_scope(user, *, community_id, company_id, compound_id) -> bool:
    """Volunteers and staff see their community, managers their company, committee
    members their compound, admins everything."""
    role = _role(user)
    if role == Role.ADMIN:
        return True
    if role in (Role.VOLUNTEER, Role.STAFF):
        return user.community_id is not None and community_id == user.community_id
    if role == Role.MANAGER:
        return user.company_id is not None and company_id == user.company_id
    if role == Role.COMMITTEE:
        return user.compound_id is not None and compound_id == user.compound_id
    return False


def can_see_compound(user, compound) -> bool:
    return _in_scope(user, community_id=compound.community_id, company_id=compound.company_id,
                     compound_id=compound.id)


def can_see_item(user, item) -> bool:
    """Items carry their compound's community and company (set when reported)."""
    return _in_scope(user, community_id=item.community_id, company_id=item.company_id,
                     compound_id=item.compound_id)


def can_report(user, compound) -> bool:
    return _role(user) in (Role.VOLUNTEER, Role.STAFF) and can_see_compound(user, compound)


def can_record_presence(user, compound) -> bool:
    """A gate scan (presence) is recorded for volunteers and staff of the compound's
    community, online (/c/<token>) or later from the phone's outbox (/sync/presence).
    Managers, committee members and admins may open the QR's page but record nothing."""
    return _role(user) in (Role.VOLUNTEER, Role.STAFF) and can_see_compound(user, compound)


def can_act_on_item(user, item) -> bool:
    """Committee members are read-only; everyone else acts where they can see."""
    return _role(user) != Role.COMMITTEE and can_see_item(user, item)


def can_manage_community(user, community_id) -> bool:
    role = _role(user)
    return role == Role.ADMIN or (role == Role.STAFF and user.community_id == community_id)


def _scope_filter(user, *, community, company, compound):
    """`_in_scope` as a SQL condition over the given columns."""
    role = _role(user)
    if role == Role.ADMIN:
        return true()
    if role in (Role.VOLUNTEER, Role.STAFF) and user.community_id:
        return community == user.community_id
    if role == Role.MANAGER and user.company_id:
        return company == user.company_id
    if role == Role.COMMITTEE and user.compound_id:
        return compound == user.compound_id
    return false()


def compound_filter(user, Compound):
    return _scope_filter(user, community=Compound.community_id, company=Compound.company_id,
                         compound=Compound.id)


def item_filter(user, Item):
    return _scope_filter(user, community=Item.community_id, company=Item.company_id,
                         compound=Item.compound_id)


def can_print_weekly(user, scope: str, target) -> bool:
    """Weekly problem lists: staff for their community and its compounds, managers for
    their company and its compounds, admins for everything."""
    role = _role(user)
    if role == Role.ADMIN:
        return True
    if role == Role.STAFF and user.community_id is not None:
        if scope == "community":
            return target.id == user.community_id
        if scope == "compound":
            return target.community_id == user.community_id
    if role == Role.MANAGER and user.company_id is not None:
        if scope == "company":
            return target.id == user.company_id
        if scope == "compound":
            return target.company_id == user.company_id
    return False


# --- ratings and notifications -----------------------------------------------------

def can_see_ratings_list(user) -> bool:
    """The red/black list: community staff (their community) and admins."""
    return _role(user) in (Role.STAFF, Role.ADMIN)


def can_see_scorecard(user, company_id, company_community_ids) -> bool:
    """Managers see their own company's scorecard; staff those of the companies working
    in their community (computed on that community's items); admins every one."""
    role = _role(user)
    if role == Role.ADMIN:
        return True
    if role == Role.MANAGER:
        return user.company_id is not None and user.company_id == company_id
    if role == Role.STAFF:
        return user.community_id is not None and user.community_id in company_community_ids
    return False


def can_manage_endpoint(user, endpoint) -> bool:
    """Staff manage their community's receivers, managers their company's, admins all."""
    role = _role(user)
    if role == Role.ADMIN:
        return True
    if role == Role.STAFF:
        return endpoint.community_id is not None and endpoint.community_id == user.community_id
    if role == Role.MANAGER:
        return endpoint.company_id is not None and endpoint.company_id == user.company_id
    return False


def endpoint_filter(user, NotifyEndpoint):
    role = _role(user)
    if role == Role.ADMIN:
        return true()
    if role == Role.STAFF and user.community_id:
        return NotifyEndpoint.community_id == user.community_id
    if role == Role.MANAGER and user.company_id:
        return NotifyEndpoint.company_id == user.company_id
    return false()
