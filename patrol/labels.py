"""Display labels for codes, in the message catalogues (lazy: evaluated per request)."""
from flask_babel import lazy_gettext as _l
from .lifecycle import Role

STATUS = {
    "reported": _l("Reported"),
    "acknowledged": _l("Acknowledged"),
    "fixed": _l("Fixed, awaiting check"),
    "verified": _l("Verified and closed"),
    "reopened": _l("Reopened"),
    "rejected": _l("Rejected"),
    "merged": _l("Merged as duplicate"),
    "handed_over": _l("Closed: compound handed to another company"),
    "answered": _l("Answered and closed"),
}

ACTION = {
    "report": _l("Reported"),
    "acknowledge": _l("Acknowledge"),
    "fix": _l("Mark fixed"),
    "verify": _l("Verify fix (passed)"),
    "reopen": _l("Check failed: reopen"),
    "reject": _l("Reject"),
    "merge": _l("Merge as duplicate"),
    "fix_on_spot": _l("Fixed on the spot"),
    "extend_deadline": _l("Extend the deadline"),
    "hand_over": _l("Property company changed"),
    "route": _l("Route to another party"),
    "dispute": _l("Dispute responsibility"),
    "decide_dispute": _l("Keep with the responsible party"),
    "answer": _l("Answer in writing"),
    "approve_answer": _l("Approve the answer and close"),
    "support": _l("Reported again (same problem)"),
    "flag": _l("Flag for supervision"),
    "unflag": _l("Lift the supervision flag"),
    "comment": _l("Reply"),
}

ROLE = {
    Role.VOLUNTEER.value: _l("Volunteer"),
    Role.MANAGER.value: _l("Property manager"),
    Role.STAFF.value: _l("Community staff"),
    Role.STREET_STAFF.value: _l("Street staff"),
    Role.COMMITTEE.value: _l("Owners' committee"),
    Role.ADMIN.value: _l("Administrator"),
    Role.DEPARTMENT.value: _l("Department"),
}

REASON = {
    "not_fixed": _l("Not fixed"),
    "badly_fixed": _l("Badly fixed"),
    "other": _l("Other"),
    "not_a_hazard": _l("Not a hazard"),
    "not_our_compound": _l("Not in this compound"),
    "needs_materials": _l("Parts or materials must be bought"),
    "needs_owners": _l("Owners or the committee must agree first"),
    "major_work": _l("Large job that takes longer"),
    "weather": _l("Weather"),
    "transferred": _l("Passed on to the new company"),
    "closed_at_handover": _l("Closed at the handover"),
    "department_duty": _l("A department's duty"),
    "company_duty": _l("The property company's duty"),
    "dispute_upheld": _l("The dispute was upheld"),
    "is_responsible": _l("It is this party's duty"),
    "shared_duty": _l("A shared duty: this party leads"),
    "slow": _l("Too slow"),
    "repeated": _l("Keeps coming back"),
    "safety": _l("A safety risk"),
    "residents_complain": _l("Residents keep complaining"),
    "not_this_compound": _l("Not in this compound"),
    "private_matter": _l("A private matter between neighbours"),
    "no_detail": _l("Not enough detail to act on"),
    "abusive": _l("Abusive or advertising"),
}

FIELD_ERROR = {
    "required": _l("Please fill this in."),
    "required_photo": _l("Please take at least one photo."),
    "too_many_photos": _l("Too many photos."),
    "too_long": _l("This is too long."),
    "bad_choice": _l("Please choose one of the options."),
    "not_integer": _l("Please enter a whole number."),
    "presence": _l("First scan the QR code at this compound's gate."),
    "device_time": _l("The phone's clock looks wrong."),
    "archived": _l("This compound is archived: reports are no longer taken here."),
}

PHOTO_ERROR = {
    "empty": _l("The photo file is empty."),
    "too_large": _l("The photo is too large."),
    "too_many_pixels": _l("The picture is too large (too many pixels)."),
    "not_image": _l("Only JPEG, PNG, WebP or HEIC photos are accepted."),
    "corrupt": _l("The photo is damaged or incomplete. Please take it again."),
}

TRANSITION_ERROR = {
    "forbidden_role": _l("Your role cannot do this."),
    "forbidden_object": _l("You cannot act on this item."),
    "bad_state": _l("This item is no longer in a state that allows this."),
    "missing_evidence": _l("Something required is missing."),
    "deadline_extension": _l("Only community staff may extend a deadline."),
    "deadline_past": _l("The deadline must be in the future."),
    "deadline_not_later": _l("The new deadline must be later than the current one."),
    "unknown": _l("Unknown action."),
    "device_time": _l("The phone's clock looks wrong, or this was recorded too long ago."),
    "not_disputed": _l("Nobody disputes this item."),
    "already_flagged": _l("This item is already flagged for supervision."),
    "not_flagged": _l("This item is not flagged."),
    "note_too_long": _l("The note is too long: at most 1,000 characters."),
}

EVIDENCE = {
    "note": _l("a note on what was done"),
    "photo": _l("a photo"),
    "reason": _l("a reason"),
    "deadline": _l("a deadline"),
    "presence": _l("a recent scan of this compound's QR code (you must be on the spot)"),
    "target": _l("the item it duplicates (an open item of the same compound)"),
    "handover": _l("a handover of the compound to another company"),
    "party": _l("the department or company it goes to"),
    "answer": _l("a written answer on record"),
}

ESCALATION = {
    "overdue": _l("Overdue"),
    "ack_late": _l("Not acknowledged in time"),
    "due_soon": _l("Due soon"),
    "lookback_late": _l("Fix waiting too long for its look-back"),
    "flagged": _l("Flagged by the owners' committee (督办)"),
    "disputed": _l("Responsibility disputed"),
}

LISTING = {
    "red": _l("Red list"),
    "black": _l("Black list"),
}

NOTIFY_EVENT = {
    "new_item": _l("New item"),
    "overdue": _l("Overdue"),
    "reopened": _l("Reopened after a failed check"),
    "daily": _l("Daily reminder"),
    "fixed": _l("Fixed: waiting for the look-back"),
    "comment": _l("Reply"),
    "routed": _l("Routed to another party"),
    "flagged": _l("Flagged for supervision"),
    "disputed": _l("Responsibility disputed"),
    "lookback_late": _l("Look-back overdue"),
    "patrol_due": _l("Patrol still due"),
    "test": _l("Test message"),
}

NOTIFY_KIND = {
    "json": _l("Generic JSON webhook"),
    "wecom_markdown": _l("WeCom group robot (markdown)"),
    "wecom_text": _l("WeCom group robot (text)"),
    "email": _l("E-mail"),
}

DELIVERY_STATUS = {
    "pending": _l("Waiting"),
    "sent": _l("Sent"),
    "failed": _l("Gave up"),
}

TARGET_ERROR = {
    "required": _l("Please fill this in."),
    "too_long": _l("This is too long."),
    "bad_url": _l("Please enter a full web address starting with https:// or http://."),
    "credentials": _l("The address must not contain a user name or password."),
    "bad_email": _l("Please enter a valid e-mail address."),
    "bad_kind": _l("Please choose one of the options."),
    "no_smtp": _l("E-mail is not set up on this server."),
}

DEPARTMENT_KIND = {
    "water": _l("Water supply"),
    "power": _l("Power supply"),
    "lift": _l("Lift maintenance"),
    "chengguan": _l("City management (城管)"),
    "community": _l("The community itself"),
    "other": _l("Other department"),
}

RESIDENT_STATUS = {
    "pending": _l("Received, waiting to be looked at"),
    "accepted": _l("Accepted: passed on to be fixed"),
    "supported": _l("Added to a problem already being handled"),
    "declined": _l("Not taken up"),
}
