"""Checkpoints (楼栋码, 消防通道码): staff create and archive them and print their QR
stickers; the list of scans recorded far from their compound (位置不符) for staff.

Scanning one is services/patrols.scan_checkpoint.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..extensions import db
from ..models import Building, Checkpoint, CheckpointScan, Compound, Presence, User
from ..models.patrols import CHECKPOINT_KINDS
from . import audit, qr
from .pdf import render_pdf

NAME_MAX = 50


class CheckpointInvalid(ValueError):
    def __init__(self, errors: dict[str, str]):
        super().__init__(errors)
        self.errors = errors


def checkpoint_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/k/{token}"


def create(actor, compound: Compound, *, name: str, kind: str, building_id: int | None,
           now: datetime) -> Checkpoint:
    """A new sticker for `compound`; the building, when given, must be the compound's."""
    name = (name or "").strip()
    errors = {}
    if not name or len(name) > NAME_MAX:
        errors["name"] = "name"
    if kind not in CHECKPOINT_KINDS:
        errors["kind"] = "kind"
    building = None
    if building_id is not None:
        building = db.session.get(Building, building_id)
        if building is None or building.compound_id != compound.id:
            errors["building_id"] = "building"
    if errors:
        raise CheckpointInvalid(errors)
    cp = Checkpoint(compound_id=compound.id, name=name, kind=kind,
                    building_id=building.id if building else None, created_at=now)
    db.session.add(cp)
    db.session.flush()
    audit.record(actor, "checkpoint.create", compound, None,
                 {"checkpoint_id": cp.id, "name": name, "kind": kind,
                  "building_id": cp.building_id}, now)
    return cp


def archive(actor, checkpoint: Checkpoint, now: datetime) -> None:
    """Its sticker stops counting (scans of it are refused); past scans stay."""
    if checkpoint.archived_at is not None:
        return
    checkpoint.archived_at = now
    audit.record(actor, "checkpoint.archive", checkpoint.compound,
                 {"checkpoint_id": checkpoint.id, "archived_at": None},
                 {"checkpoint_id": checkpoint.id, "archived_at": now}, now)


def stickers_pdf(checkpoints: list[Checkpoint], base_url: str) -> bytes:
    """Small stickers, twelve to an A4 sheet: compound, checkpoint name, QR."""
    resources, entries = {}, []
    for cp in checkpoints:
        url = checkpoint_url(base_url, cp.qr_token)
        name = f"qr-{cp.id}"
        resources[name] = (qr.svg_compact(url), "image/svg+xml")
        entries.append({"cp": cp, "qr": f"patrol-res:{name}"})
    return render_pdf("pdf/checkpoint_stickers.html", resources=resources, entries=entries)


# --- 位置不符: scans recorded far from their compound ---------------------------------------

@dataclass(frozen=True)
class FlaggedScan:
    kind: str                 # "gate" | "checkpoint"
    at: datetime              # when it was made (the phone's time when sent later)
    user: User
    compound: Compound
    distance_m: int | None
    checkpoint: Checkpoint | None
    patrol_id: int | None


def flagged_scans(compound_condition, limit: int = 200) -> list[FlaggedScan]:
    """Gate and checkpoint scans flagged far, newest first, in the compounds
    `compound_condition` (a SQL condition on Compound) allows."""
    in_scope = db.select(Compound.id).where(compound_condition)
    gates = db.session.execute(
        db.select(Presence, User, Compound).join(User, User.id == Presence.user_id)
        .join(Compound, Compound.id == Presence.compound_id)
        .where(Presence.far.is_(True), Presence.compound_id.in_(in_scope))
        .order_by(Presence.at.desc()).limit(limit)).all()
    cps = db.session.execute(
        db.select(CheckpointScan, User, Compound, Checkpoint)
        .join(User, User.id == CheckpointScan.user_id)
        .join(Checkpoint, Checkpoint.id == CheckpointScan.checkpoint_id)
        .join(Compound, Compound.id == Checkpoint.compound_id)
        .where(CheckpointScan.far.is_(True), Checkpoint.compound_id.in_(in_scope))
        .order_by(CheckpointScan.at.desc()).limit(limit)).all()
    out = [FlaggedScan("gate", p.device_at or p.at, u, c, p.distance_m, None, p.patrol_id)
           for p, u, c in gates]
    out += [FlaggedScan("checkpoint", s.device_at or s.at, u, c, s.distance_m, cp, s.patrol_id)
            for s, u, c, cp in cps]
    out.sort(key=lambda f: f.at, reverse=True)
    return out[:limit]

