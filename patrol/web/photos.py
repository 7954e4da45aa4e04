"""Serving photos: only to users allowed to see the item they belong to."""
from flask import Blueprint, Response, abort
from flask_login import current_user, login_required

from .. import permissions
from ..models import Photo
from ..services.photo_store import storage
from .helpers import get_or_404

bp = Blueprint("photos", __name__)


@bp.get("/photos/<int:photo_id>/<any(full, thumb):size>.jpg")
@login_required
def serve(photo_id, size):
    photo = get_or_404(Photo, photo_id)
    if photo.item is None:
        allowed = photo.uploader_id == current_user.id  # pending upload: only its sender
    else:
        allowed = permissions.can_see_item(current_user, photo.item)
    if not allowed:
        abort(404)  # do not reveal that the photo exists
    key = photo.key if size == "full" else photo.thumb_key
    try:
        data = storage().get(key)
    except FileNotFoundError:
        abort(404)
    resp = Response(data, mimetype="image/jpeg")
    # Content-addressed, so immutable; private because access is per user.
    resp.headers["Cache-Control"] = "private, max-age=31536000, immutable"
    resp.headers["ETag"] = key.rsplit("/", 1)[-1].split(".")[0]
    return resp
