"""Every route of a running node against every kind of credential, from the
node's own route table (GET /v1/admin/routes): no credential, another
tenant's key, a token without the route's scope, a non-admin key on an
admin route, and the right key. A route added without a scope, or a route
that forgets to check one, fails here.

Usage: matrix.py BASE ADMIN_KEY
"""

import base64
import json
import re
import sys
import time
import urllib.error
import urllib.request

BASE, ADMIN = sys.argv[1], sys.argv[2]
failures = []
checked = 0


def call(method, path, key=None, dialect="native", body=None, ctype=None,
         raw_auth=None, extra=None):
    headers = dict(extra or {})
    if raw_auth is not None:
        headers["Authorization"] = raw_auth
    elif key is not None:
        if dialect == "apivideo":
            token = base64.b64encode((key + ":").encode()).decode()
            headers["Authorization"] = "Basic " + token
        elif dialect == "gcore":
            headers["Authorization"] = "APIKey " + key
        else:
            headers["Authorization"] = "Bearer " + key
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers["Content-Type"] = ctype or "application/json"
    req = urllib.request.Request(BASE + path, data=data, method=method,
                                 headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def ok(cond, what):
    global checked
    checked += 1
    if not cond:
        failures.append(what)


def new_key(tenant, admin=False, scopes=None):
    body = {"tenant": tenant, "admin": admin}
    if scopes is not None:
        body["scopes"] = scopes
    status, out = call("POST", "/v1/keys", ADMIN, body=body)
    assert status == 201, (status, out)
    return json.loads(out)["key"]


routes_status, routes_body = call("GET", "/v1/admin/routes", ADMIN)
assert routes_status == 200, (routes_status, routes_body)
table = json.loads(routes_body)
routes, scopes = table["data"], table["scopes"]
print(f"matrix: {len(routes)} routes, {len(scopes)} scopes")

# Every route says who may call it; those for keys name a known scope.
for r in routes:
    where = f"{r['method']} {r['pattern']}"
    ok(r["access"] in ("open", "key", "admin", "capability"),
       f"{where}: access {r['access']!r}")
    if r["access"] in ("key", "admin"):
        ok(r["scope"] in scopes, f"{where}: names no known scope")
    else:
        ok(r["scope"] is None, f"{where}: {r['access']} route with a scope")

# The keys: tenant a (everything), tenant b, an admin of a, and for each
# scope a token of a holding every scope but that one (and an admin one).
key_a = new_key("matrix-a")
key_b = new_key("matrix-b")
admin_a = new_key("matrix-a", admin=True)
lacking = {s: new_key("matrix-a", scopes=[x for x in scopes if x != s])
           for s in scopes}
lacking_admin = {s: new_key("matrix-a", admin=True,
                            scopes=[x for x in scopes if x != s])
                 for s in scopes}


def fresh_video():
    """A video of tenant a with no source yet (api.video's create), and
    the Gcore number its record carries."""
    status, out = call("POST", "/videos", key_a, "apivideo",
                       {"title": "matrix"})
    assert status in (200, 201), (status, out)
    vid = json.loads(out)["videoId"]
    status, out = call("GET", f"/v1/videos/{vid}", key_a)
    assert status == 200, (status, out)
    return vid


def gcore_number(vid):
    status, out = call("GET", "/streaming/videos?page=1", key_a, "gcore")
    if status != 200:
        return None
    for v in json.loads(out):
        if v.get("name") == "matrix" and "id" in v:
            status2, out2 = call("GET", f"/streaming/videos/{v['id']}", key_a,
                                 "gcore")
            if status2 == 200 and vid in json.dumps(json.loads(out2)):
                return v["id"]
    return None


def flare_key():
    key = f"matrix-{int(time.time() * 1000)}"
    status, out = call("POST", "/api/video/create", key_a, "flare",
                       {"s3Key": key, "fileName": "matrix.mp4",
                        "title": "matrix"})
    return key if status in (200, 201) else None


video = fresh_video()
number = gcore_number(video)
s3key = flare_key()


def fill(pattern, video_kind):
    """A concrete path for a route's regex: its first capture the video it
    names, other captures a plain value of their shape."""
    out, i, group = [], 0, 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            if nxt == "d":
                out.append("1")
            elif nxt == "w":
                out.append("x")
            else:
                out.append(nxt)
            i += 2
            # a quantifier after \d or \w
            if i < len(pattern) and pattern[i] in "+*":
                i += 1
            continue
        if c == "(":
            depth, j = 1, i + 1
            while depth:
                depth += {"(": 1, ")": -1}.get(pattern[j], 0)
                j += 1
            inner = pattern[i + 1:j - 1]
            group += 0 if inner.startswith("?:") else 1
            if inner.startswith("?:"):
                out.append(fill(inner[2:].split("|")[0], "none"))
            elif group == 1 and video_kind != "none":
                value = {"uuid": video, "gcore_number": str(number),
                         "flare_key": s3key}[video_kind]
                if value in (None, "None"):
                    return None
                out.append(value)
            elif "\\d" in inner:
                out.append("1")
            else:
                out.append("x")
            i = j
            continue
        if c in "^$":
            i += 1
            continue
        if c in ".":
            out.append("x")
            i += 1
            continue
        if c in "*+?":
            i += 1
            continue
        out.append(c)
        i += 1
    return "".join(out)


def body_for(r):
    return {} if r["method"] in ("POST", "PUT", "PATCH") else None


def tus_request(r):
    """A tus route (/upload/) answers 412 to a request without
    Tus-Resumable, and HEAD through its GET route: it is asked the tus way
    (method, body, content type, headers), so that what it refuses is the
    missing credential."""
    headers = {"Tus-Resumable": "1.0.0"}
    if r["method"] == "POST":
        return "POST", None, None, {**headers, "Upload-Length": "1"}
    if r["method"] == "PATCH":
        return ("PATCH", b"x", "application/offset+octet-stream",
                {**headers, "Upload-Offset": "0"})
    method = "HEAD" if r["method"] == "GET" else r["method"]
    return method, None, None, headers


# Destructive routes go last, each on a video of its own.
ordered = sorted(routes, key=lambda r: r["method"] == "DELETE")
for r in ordered:
    where = f"{r['method']} {r['pattern']}"
    if r["method"] == "OPTIONS":
        continue
    if r["method"] == "DELETE" and r["video"] != "none":
        video = fresh_video()
        number = gcore_number(video)
    path = fill(r["pattern"], r["video"])
    if path is None:
        failures.append(f"{where}: no {r['video']} to fill in")
        continue
    d, body = r["dialect"], body_for(r)
    if r["access"] == "open":
        status, _ = call(r["method"], path, None, d, body)
        ok(status not in (401, 403), f"{where}: open route answered {status}")
        continue
    if r["access"] == "capability":
        if r["pattern"].startswith("/upload/"):
            method, tus_body, ctype, extra = tus_request(r)
            status, _ = call(method, path, None, d, tus_body, ctype,
                             extra=extra)
        else:
            status, _ = call(r["method"], path, None, d, body)
        ok(status in (400, 401, 403, 404),
           f"{where}: without its token answered {status}")
        continue
    # No credential: 401 in the dialect.
    status, _ = call(r["method"], path, None, d, body)
    ok(status == 401, f"{where}: no credential answered {status}")
    # A credential that is not a key: 401.
    status, _ = call(r["method"], path, "sk-not-a-key-of-this-node", d, body)
    ok(status == 401, f"{where}: a wrong key answered {status}")
    right = admin_a if r["access"] == "admin" else key_a
    if r["access"] == "admin":
        status, _ = call(r["method"], path, key_a, d, body)
        ok(status == 403, f"{where}: a non-admin key answered {status}")
    # A token without the route's scope: 403.
    token = (lacking_admin if r["access"] == "admin" else lacking)[r["scope"]]
    status, _ = call(r["method"], path, token, d, body)
    ok(status == 403, f"{where}: a token without {r['scope']} answered {status}")
    # Another tenant's key: the video it names is not found.
    if r["video"] != "none" and r["access"] == "key":
        status, _ = call(r["method"], path, key_b, d, body)
        ok(status == 404, f"{where}: another tenant's key answered {status}")
    # The right key passes the gate.
    status, out = call(r["method"], path, right, d, body)
    ok(status not in (401, 403) and status < 500,
       f"{where}: the right key answered {status} {out[:200]!r}")
    if r["video"] != "none":
        ok(status != 404, f"{where}: the right key did not find the video")

print(f"matrix: {checked} checks, {len(failures)} failed")
for f in failures:
    print("  FAIL " + f)
sys.exit(1 if failures else 0)
