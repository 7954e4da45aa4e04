"""Database models, one module per area."""
from .base import utcnow  # noqa: F401
from .places import Street, Community, Company, Compound, Building  # noqa: F401
from .people import User, Team, TeamCompound, Invite, Device  # noqa: F401
from .items import Item, ItemEvent, Photo, Presence  # noqa: F401
from .notify import NotifyEndpoint, Delivery  # noqa: F401
from .audit import AuditEntry  # noqa: F401
from .contracts import Contract  # noqa: F401
from .workflow import Department, ResidentReport, CommitteeRating  # noqa: F401
from .api import ApiToken  # noqa: F401
from .patrols import (Patrol, PatrolMember, Checkpoint, CheckpointScan,  # noqa: F401
                      PatrolSchedule, MonthlyHighlight)
from .jobs import Job  # noqa: F401
from .counts import ItemTally, ItemTallyDay  # noqa: F401
