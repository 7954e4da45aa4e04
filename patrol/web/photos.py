"""Serving photos: only to users allowed to see the item they belong to."""
from urllib.parse import urlsplit

from flask import (Blueprint, Response, abort, current_app, jsonify, redirect, request,
                   send_file, url_for)
from flask_babel import gettext as _
from flask_login import current_user, login_required

from .. import labels, permissions
from ..extensions import db, limiter
from ..models import Photo, ResidentReport
from ..models.items import PHOTO_KINDS
from ..services.photo_store import save_upload, storage
from ..services.photos import PhotoRejected
from .helpers import authorise, get_or_404
from .sync import error_json

bp = Blueprint("photos", __name__)


@bp.get("/photos/<int:photo_id>/<any(full, thumb):size>.jpg")
@login_required
def serve(photo_id, size):
    photo = get_or_404(Photo, photo_id)
    # A resident's photo before triage goes with its report (permissions.can_see_photo).
    report = (db.session.get(ResidentReport, photo.resident_report_id)
              if photo.resident_report_id is not None and photo.item_id is None else None)
    authorise(permissions.can_see_photo, photo, report)  # refused: 404
    key = photo.key if size == "full" else photo.thumb_key
    store = storage()
    presign = getattr(store, "presigned_url", None)
    # Full size only: thumbnails are small, and phones keep them for offline pages (the
    # service worker keeps same-origin answers only).
    if presign is not None and size == "full" and presigned_mode():
        # Allowed (checked above): a link to the object itself, good for a few minutes.
        seconds = int(current_app.config.get("PRESIGN_SECONDS", 300))
        resp = redirect(presign(key, seconds), code=302)
        # The browser may reuse the redirect while the link it points to still works.
        resp.headers["Cache-Control"] = f"private, max-age={max(seconds // 2, 0)}"
        return resp
    path = store.local_path(key)
    try:
        if path is not None:   # streamed from disk, with ranges and conditional requests
            resp = send_file(path, mimetype="image/jpeg", conditional=True, etag=False,
                             max_age=None)
        else:
            resp = Response(store.get(key), mimetype="image/jpeg")
    except FileNotFoundError:
        abort(404)
    # Content-addressed, so immutable; private because access is per user.
    resp.headers["Cache-Control"] = "private, max-age=31536000, immutable"
    resp.set_etag(key.rsplit("/", 1)[-1].split(".")[0])
    return resp.make_conditional(request)


def presigned_mode() -> bool:
    return (current_app.config.get("PHOTO_URLS") == "presigned"
            and current_app.config.get("STORAGE") == "s3")


def presigned_origin() -> str | None:
    """Where presigned photo links point (scheme and host), for the pages' CSP img-src;
    None when photos are served by the app."""
    if not presigned_mode():
        return None
    cache = current_app.extensions
    if "patrol.photo_origin" not in cache:
        link = urlsplit(storage().presigned_url("probe", 60))   # signed locally, no request
        cache["patrol.photo_origin"] = f"{link.scheme}://{link.netloc}"
    return cache["patrol.photo_origin"]


@bp.post("/photos")
@login_required
@limiter.limit("120 per minute")
def upload():
    """One photo at a time, sent by the page (downscaled in the browser) before the form.

    The row stays pending (no item) until a report or action claims it by id.
    """
    if permissions.is_read_only(current_user):
        abort(403)
    upload_file = request.files.get("photo")
    if upload_file is None:
        return error_json(400, "no_photo", _("No photo was received."))
    kind = request.form.get("kind")
    try:
        photo = save_upload(upload_file.read(), uploader=current_user,
                            kind=kind if kind in PHOTO_KINDS else "before",
                            lat=_coord(request.form.get("lat"), 90),
                            lon=_coord(request.form.get("lon"), 180))
    except PhotoRejected as exc:
        return error_json(422, "photo_rejected", labels.PHOTO_ERROR[exc.code],
                          fields={"photo": labels.PHOTO_ERROR[exc.code]}, reason=exc.code)
    db.session.flush()   # its id; the answer is read before the commit expires the row
    answer = jsonify(id=photo.id, width=photo.width, height=photo.height, size=photo.size,
                     thumb=url_for("photos.serve", photo_id=photo.id, size="thumb"))
    db.session.commit()
    return answer, 201


def _coord(value, limit):
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if -limit <= number <= limit else None
