"""The service worker's version follows the files it caches, so a deploy reaches phones."""
import re
import shutil
from pathlib import Path

from patrol.web.offline import SHELL_FILES

SW = Path(__file__).resolve().parent.parent / "static/js/sw.js"


def served_version(client):
    resp = client.get("/sw.js")
    assert resp.status_code == 200
    assert resp.mimetype == "application/javascript"
    match = re.search(r'var VERSION = "([^"]*)";', resp.get_data(as_text=True))
    return match.group(1), resp


def test_the_shell_list_matches_the_worker():
    urls = re.search(r"var SHELL_URLS = \[(.*?)\];", SW.read_text(), re.S).group(1)
    static = [u[len("/static/"):] for u in re.findall(r'"([^"]+)"', urls) if u.startswith("/static/")]
    assert tuple(static) == SHELL_FILES


def test_version_is_a_digest_and_changes_with_a_shell_file(app, client, tmp_path):
    version, resp = served_version(client)
    assert re.fullmatch(r"[0-9a-f]{16}", version)
    assert served_version(client)[0] == version           # stable between requests
    assert client.get("/sw.js", headers={"If-None-Match": resp.headers["ETag"]}).status_code == 304

    copy = tmp_path / "static"
    shutil.copytree(app.static_folder, copy)
    app.static_folder = str(copy)
    assert served_version(client)[0] == version           # same bytes, same version
    with open(copy / "js/offline.js", "a") as f:
        f.write("\n// a deploy\n")
    assert served_version(client)[0] != version


def test_the_app_installs_with_a_chinese_name_and_real_icons(client):
    import io
    import json

    from PIL import Image
    manifest = json.loads(client.get("/static/manifest.webmanifest").get_data(as_text=True))
    assert manifest["name"] == "小区巡查" and manifest["lang"] == "zh-CN"
    assert manifest["display"] == "standalone" and manifest["start_url"] == "/"
    sizes = set()
    for icon in manifest["icons"]:
        resp = client.get(icon["src"])
        assert resp.status_code == 200
        with Image.open(io.BytesIO(resp.data)) as im:
            assert im.format == "PNG" and f"{im.width}x{im.height}" == icon["sizes"]
            sizes.add(im.width)
    assert {192, 512} <= sizes                     # what Android asks for to install
    page = client.get("/login").get_data(as_text=True)
    # Linked by version (web/static_files.py), like every static file.
    assert re.search(r'<link rel="manifest" href="/static/manifest\.webmanifest\?v=[0-9a-f]{12}">',
                     page)


def test_version_changes_with_the_fallback_page_template(app, client, tmp_path):
    version = served_version(client)[0]
    copy = tmp_path / "templates"
    shutil.copytree(app.template_folder, copy)
    app.template_folder = str(copy)
    assert served_version(client)[0] == version
    with open(copy / "offline.html", "a") as f:
        f.write("\n{# a deploy #}\n")
    assert served_version(client)[0] != version


def test_the_fallback_page_is_for_nobody(app, world):
    """The worker keeps one copy of /offline for whoever uses the phone next."""
    from tests.conftest import sign_in
    client = sign_in(app.test_client(), world.vol_a)
    with client.session_transaction() as sess:
        sess["_flashes"] = [("ok", "已上报，谢谢！")]
    page = client.get("/offline").get_data(as_text=True)
    assert 'data-user=""' in page and "vol_a" not in page
    assert "csrf_token" not in page and "/logout" not in page
    assert "已上报" not in page
    assert "已上报" in client.get("/compounds").get_data(as_text=True)  # still there


def test_pages_kept_for_later_leave_the_flashed_message_for_the_user(app, world):
    from tests.conftest import sign_in
    client = sign_in(app.test_client(), world.vol_a)
    with client.session_transaction() as sess:
        sess["_flashes"] = [("ok", "已上报，谢谢！")]
    kept = client.get(f"/compounds/{world.a1}", headers={"X-Patrol-Precache": "1"})
    assert kept.status_code == 200 and "已上报" not in kept.get_data(as_text=True)
    assert "已上报" in client.get(f"/compounds/{world.a1}").get_data(as_text=True)
    assert "已上报" not in client.get(f"/compounds/{world.a1}").get_data(as_text=True)


def test_version_changes_with_the_translations(app, client, tmp_path):
    """The fallback page is kept in its user's language: a new wording must reach phones."""
    version = served_version(client)[0]
    shutil.copytree(Path(app.root_path) / "translations", tmp_path / "translations")
    app.root_path = str(tmp_path)
    assert served_version(client)[0] == version
    with open(tmp_path / "translations/zh/LC_MESSAGES/messages.po", "a") as f:
        f.write('\nmsgid "a new wording"\nmsgstr "新的说法"\n')
    assert served_version(client)[0] != version
