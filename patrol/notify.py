"""Outbound notifications, the pure part: receiver kinds, URL checks, message formats,
retry backoff. No Flask, no database: services/notify.py does the queueing and sending.

A notification is built once, when it is queued, as a plain JSON-able dict (the
"generic" payload, stored on the Delivery row). Each receiver kind renders that
dict into its own wire format at send time:

- ``json``            the generic payload as is (POST, application/json);
- ``wecom_markdown``  企业微信群机器人 {"msgtype": "markdown", "markdown": {"content": …}};
- ``wecom_text``      企业微信群机器人 {"msgtype": "text", "text": {"content": …}};
- ``email``           a plain-text e-mail through the configured SMTP server.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

# "fixed": a fix waits for its look-back (a team's receiver); "comment", "routed",
# "flagged", "disputed": the seed's chain around the fix (residents, departments, 督办);
# "patrol_due": a team's patrol still due the day before its week or month ends.
EVENTS = ("new_item", "overdue", "reopened", "daily", "fixed", "comment", "routed",
          "flagged", "disputed", "lookback_late", "patrol_due")
KINDS = ("json", "wecom_markdown", "wecom_text", "email")
WEBHOOK_KINDS = ("json", "wecom_markdown", "wecom_text")
# WeCom's limits: markdown content 4096 bytes, text content 2048 bytes (UTF-8).
WECOM_LIMITS = {"wecom_markdown": 4096, "wecom_text": 2048}
MAX_URL = 500
EMAIL_RE = re.compile(r"^[^@\s<>,;\"']{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,24}$")


class InvalidTarget(ValueError):
    """`code` is stable; the page translates it."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def validate_url(url: str) -> str:
    """An absolute http(s) URL with a host, no user:password@, no spaces; returned trimmed."""
    url = (url or "").strip()
    if not url:
        raise InvalidTarget("required")
    if len(url) > MAX_URL:
        raise InvalidTarget("too_long")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise InvalidTarget("bad_url")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError on a bad port
    except ValueError:
        raise InvalidTarget("bad_url") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidTarget("bad_url")
    if parts.username is not None or parts.password is not None:
        raise InvalidTarget("credentials")
    if port == 0:
        raise InvalidTarget("bad_url")
    return url


def validate_email(address: str) -> str:
    address = (address or "").strip()
    if not address:
        raise InvalidTarget("required")
    if not EMAIL_RE.match(address):
        raise InvalidTarget("bad_email")
    return address


def validate_target(kind: str, target: str) -> str:
    if kind not in KINDS:
        raise InvalidTarget("bad_kind")
    return validate_email(target) if kind == "email" else validate_url(target)


# IPv6 prefixes that carry an IPv4 address inside: NAT64, 6to4, IPv4-compatible.
_EMBEDS_IPV4 = [ipaddress.ip_network(n) for n in ("64:ff9b::/96", "64:ff9b:1::/48",
                                                  "2002::/16", "::/96")]


def is_public_address(address: str) -> bool:
    """False for loopback, private, link-local (cloud metadata), multicast and reserved,
    also when hidden in an IPv6 form (mapped, NAT64, 6to4, IPv4-compatible)."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        elif any(ip in net for net in _EMBEDS_IPV4):
            return False
    return ip.is_global and not ip.is_multicast


def mask_url(url: str) -> str:
    """For display: scheme://host/path, with any query (WeCom's key=…) hidden."""
    parts = urlsplit(url)
    shown = f"{parts.scheme}://{parts.netloc}{parts.path}"
    return shown + ("?…" if parts.query else "")


def backoff(attempts: int, base: timedelta, cap: timedelta) -> timedelta:
    """Wait before the next try after `attempts` failed tries: base, 2·base, 4·base, … ≤ cap."""
    if attempts < 1:
        return timedelta(0)
    return min(base * (2 ** min(attempts - 1, 30)), cap)


def signature(secret: str, body: bytes) -> str:
    """X-Patrol-Signature: HMAC-SHA256 of the exact body, keyed with the endpoint's secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Request:
    body: bytes
    content_type: str


def _truncate_utf8(text: str, limit: int) -> str:
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[:limit - 3].decode(errors="ignore") + "…"


# WeCom's markdown has no escape character: user text gets full-width look-alikes
# for the characters that would make links, emphasis, headings or <font> tags.
_MD_SAFE = str.maketrans({"[": "［", "]": "］", "(": "（", ")": "）", "<": "＜", ">": "＞",
                          "*": "＊", "#": "＃", "`": "｀", "_": "＿", "~": "～"})


def md_text(text) -> str:
    """One line of plain text, safe inside WeCom markdown (newlines cannot start a block)."""
    return " ".join(str(text).split()).translate(_MD_SAFE)


def markdown(payload: dict) -> str:
    """WeCom markdown: a bold title, quoted facts, a link."""
    lines = [f"**{md_text(payload['title'])}**"]
    lines += [f"> {md_text(line)}" for line in payload.get("lines", [])]
    if payload.get("url"):
        lines.append(f"[{payload.get('link_text') or payload['url']}]({payload['url']})")
    return "\n".join(lines)


def plain_text(payload: dict) -> str:
    lines = [payload["title"], *payload.get("lines", [])]
    if payload.get("url"):
        lines.append(payload["url"])
    return "\n".join(lines)


def render(kind: str, payload: dict) -> Request:
    """The HTTP body for a webhook receiver of this kind."""
    if kind == "json":
        body = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode()
    elif kind == "wecom_markdown":
        content = _truncate_utf8(markdown(payload), WECOM_LIMITS[kind])
        body = json.dumps({"msgtype": "markdown", "markdown": {"content": content}},
                          ensure_ascii=False).encode()
    elif kind == "wecom_text":
        content = _truncate_utf8(plain_text(payload), WECOM_LIMITS[kind])
        body = json.dumps({"msgtype": "text", "text": {"content": content}},
                          ensure_ascii=False).encode()
    else:
        raise ValueError(f"not a webhook kind: {kind}")
    return Request(body, "application/json; charset=utf-8")


def response_error(kind: str, status: int, body: bytes) -> str | None:
    """None if the receiver accepted the message, else a short reason.

    WeCom answers HTTP 200 even when it refuses a message; its JSON errcode says.
    """
    if not 200 <= status < 300:
        return f"HTTP {status}"
    if kind in WECOM_LIMITS:
        try:
            answer = json.loads(body.decode() or "{}")
        except (ValueError, UnicodeDecodeError):
            return "WeCom: unreadable answer"
        if answer.get("errcode", 0) != 0:
            return f"WeCom errcode {answer.get('errcode')}: {str(answer.get('errmsg', ''))[:100]}"
    return None
