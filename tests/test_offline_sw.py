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
    assert '<link rel="manifest" href="/static/manifest.webmanifest">' in page
