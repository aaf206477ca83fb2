#!/usr/bin/env python3
"""A fault harness for a reel cluster: every reeld in a network namespace of
its own, a nemesis that cuts and heals links, skews a clock and kills nodes,
and a checker that judges the outcome from the API alone.

    harness.py --build DIR --clip FILE [--nodes 3] [--cycles 20]
               [--skew 60] [--report FILE]

The network is made here and removed at the end: a bridge, one namespace
per node joined to it by a veth pair, addresses in 10.231.X.0/24 (X from
this process's id). The test talks to the nodes from the host side of the
bridge. A link is cut inside a namespace with a blackhole route to the
other node's address: packets vanish, as on a real split; a cut made on one
side only is a one-way cut.

The checker logs every 202 a client got and every 204 of a delete, then,
once healed, checks on every node: each accepted upload is there exactly
once and ends ready (or failed with a reason); nothing deleted came back;
all nodes agree on every record; each ready video plays from every node
with every frame. Needs root (CI runs as root). Exit status: 0 all good, 1
a check failed, 77 cannot run here (no namespaces).
"""
import argparse
import base64
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

KEY = "sk-partition-harness-key-0123456789abcdef"
SECRET = "partition-harness-cluster-secret"


def sh(*args, check=True):
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {r.stderr.strip()}")
    return r


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


class Net:
    """A bridge and one namespace per node."""

    def __init__(self, n):
        tag = f"rp{os.getpid() % 100000}"
        self.bridge = f"{tag}b"
        self.ns = [f"{tag}n{i}" for i in range(n)]
        self.veth = [f"{tag}v{i}" for i in range(n)]
        octet = 10 + os.getpid() % 240
        self.ip = [f"10.231.{octet}.{i + 1}" for i in range(n)]
        self.host = f"10.231.{octet}.254"
        self.cuts = set()  # (from, to): node `from` cannot reach `to`

    def up(self):
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        sh("ip", "addr", "add", self.host + "/24", "dev", self.bridge)
        sh("ip", "link", "set", self.bridge, "up")
        for ns, veth, ip in zip(self.ns, self.veth, self.ip):
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0",
               "netns", ns)
            sh("ip", "link", "set", veth, "master", self.bridge, "up")
            sh("ip", "-n", ns, "addr", "add", ip + "/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")

    def down(self):
        for ns in self.ns:
            sh("ip", "netns", "del", ns, check=False)
        sh("ip", "link", "del", self.bridge, check=False)

    def cut(self, a, b):
        if (a, b) not in self.cuts:
            sh("ip", "-n", self.ns[a], "route", "add", "blackhole", self.ip[b] + "/32")
            self.cuts.add((a, b))

    def heal(self):
        for a, b in sorted(self.cuts):
            sh("ip", "-n", self.ns[a], "route", "del", "blackhole", self.ip[b] + "/32",
               check=False)
        self.cuts.clear()


class Node:
    def __init__(self, i, net, build, data, skew_s=0):
        self.i, self.net, self.build, self.data, self.skew_s = i, net, build, data, skew_s
        self.proc = None
        self.base = f"http://{net.ip[i]}:8080"

    def start(self):
        args = ["ip", "netns", "exec", self.net.ns[self.i]]
        env = dict(os.environ)
        if self.skew_s:
            # The wall clock off by skew_s; CAF's timers use the monotonic
            # clock, left alone.
            args += ["faketime", "-f", f"{self.skew_s:+d}s"]
            env["DONT_FAKE_MONOTONIC"] = "1"
        args += [os.path.join(self.build, "reeld"),
                 "--listen", f"{self.net.ip[self.i]}:8080",
                 "--data", self.data, "--bootstrap-key", KEY,
                 "--node-id", f"n{self.i}",
                 "--cluster-listen", f"{self.net.ip[self.i]}:7000",
                 "--cluster-secret", SECRET, "--workers", "1",
                 "--chunk-seconds", "2", "--segment-seconds", "2",
                 "--rate-limit", "0"]
        for j, ip in enumerate(self.net.ip):
            if j != self.i:
                args += ["--join", f"{ip}:7000"]
        out = open(self.data + ".log", "a")
        self.proc = subprocess.Popen(args, stdout=out, stderr=out, env=env,
                                     start_new_session=True)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"n{self.i} exited at start; log {self.data}.log")
            try:
                if self.get("/healthz", timeout=1)[0] in (200, 503):
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"n{self.i} did not answer; log {self.data}.log")

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill9()

    def request(self, method, path, body=None, headers=None, timeout=10):
        h = {"Authorization": "Bearer " + KEY}
        h.update(headers or {})
        req = urllib.request.Request(self.base + path, data=body, method=method,
                                     headers=h)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def get(self, path, timeout=10):
        return self.request("GET", path, timeout=timeout)

    def json(self, path, timeout=10):
        status, body = self.get(path, timeout)
        try:
            return status, json.loads(body or b"null")
        except ValueError:
            return status, None


def multipart(path, folder="root"):
    boundary = "reelharness" + str(random.getrandbits(64))
    with open(path, "rb") as f:
        data = f.read()
    parts = [
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"folder\"\r\n\r\n{folder}\r\n".encode(),
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"video\"; filename=\"clip.mp4\"\r\n"
        "Content-Type: video/mp4\r\n\r\n".encode(), data, f"\r\n--{boundary}--\r\n".encode()]
    return b"".join(parts), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


class Checker:
    """What clients were told, and whether the cluster kept its word."""

    def __init__(self, nodes, clip, frames):
        self.nodes, self.clip, self.frames = nodes, clip, frames
        self.accepted = {}   # id -> (node, scenario)
        self.deleted = {}    # id -> scenario
        self.refused = 0     # answers that were not 202 (a client may retry)
        self.pending = {}    # Idempotency-Key -> scenario: no 202 yet
        self.titles = {}     # id -> the last title a PATCH got 200 for
        self.by_scenario = {}

    def stats(self, scenario):
        return self.by_scenario.setdefault(
            scenario, {"accepted": 0, "refused": 0, "deleted": 0, "cycles": 0})

    def upload(self, node, scenario, key=None):
        """One attempt; a client that got no 202 retries later with the
        same Idempotency-Key (retry_pending)."""
        body, headers = multipart(self.clip)
        key = key or "harness-" + str(random.getrandbits(64))
        headers["Idempotency-Key"] = key
        try:
            status, answer = node.request("POST", "/api/client/v1/uploads", body,
                                          headers, timeout=10)
        except OSError as e:
            status, answer = 0, str(e).encode()
        if status == 202:
            vid = json.loads(answer)["data"]["id"]
            if vid in self.accepted:
                self.stats(scenario)["replayed"] = self.stats(scenario).get("replayed", 0) + 1
            self.accepted[vid] = (node.i, scenario)
            self.stats(scenario)["accepted"] += 1
            self.pending.pop(key, None)
        else:
            self.refused += 1
            self.stats(scenario)["refused"] += 1
            self.pending[key] = scenario

    def retry_pending(self, nodes):
        """Every upload that got no 202, sent again with its key."""
        for key, scenario in list(self.pending.items()):
            self.upload(random.choice(nodes), scenario, key)

    def patch_one(self, nodes, scenario):
        """Renames a ready video through a random node; a 200 is a promise
        that this title is the video's until the next 200."""
        ready = [v for v in self.accepted if v not in self.deleted]
        random.shuffle(ready)
        for vid in ready[:1]:
            node = random.choice(nodes)
            title = f"{scenario}-{time.time():.3f}-n{node.i}"
            try:
                status, _ = node.request(
                    "PATCH", f"/videos/{vid}", json.dumps({"title": title}).encode(),
                    {"Content-Type": "application/json",
                     "Authorization": "Basic " + base64.b64encode((KEY + ":").encode()).decode()},
                    timeout=10)
            except OSError:
                continue
            if status == 200:
                self.titles[vid] = title
            self.stats(scenario).setdefault("patch_status", {}).setdefault(str(status), 0)
            self.stats(scenario)["patch_status"][str(status)] += 1

    def delete_one(self, nodes, scenario):
        live = [v for v in self.accepted if v not in self.deleted]
        random.shuffle(live)
        for vid in live[:3]:
            node = random.choice(nodes)
            try:
                status, _ = node.request("DELETE", f"/v1/videos/{vid}", timeout=10)
            except OSError:
                continue
            if status == 204:
                self.deleted[vid] = scenario
                self.stats(scenario)["deleted"] += 1
                return

    def play_during_cut(self, nodes, scenario):
        """A ready video's playlist from every node while cut (counted, not
        judged: a node holds the media of only some videos, R = 2)."""
        ready = [v for v in self.accepted if v not in self.deleted]
        if not ready:
            return
        vid = random.choice(ready)
        st = self.stats(scenario)
        for node in nodes:
            try:
                status, _ = node.get(f"/media/{vid}/master-cmaf.m3u8", timeout=5)
            except OSError:
                status = 0
            key = "played_during_cut" if status == 200 else "not_played_during_cut"
            st[key] = st.get(key, 0) + 1

    def view(self, node):
        """Every video a node lists: id -> (state, failure, files)."""
        out, offset = {}, 0
        while True:
            status, page = node.json(f"/v1/videos?limit=100&offset={offset}")
            if status != 200:
                raise RuntimeError(f"n{node.i} list: {status}")
            for v in page["data"]:
                out[v["id"]] = (v["state"], v.get("failure_reason") or v.get("reason") or "",
                                tuple(sorted(f["name"] for f in v.get("files", []))),
                                v.get("title"))
            offset += len(page["data"])
            if not page["data"] or offset >= page["pagination"]["total"]:
                return out

    def agree_within(self, scenario, timeout_s=30):
        """After a heal: seconds until every node lists the same videos
        (kept per scenario, the worst of its cycles)."""
        start = time.time()
        took = None
        while time.time() - start < timeout_s:
            try:
                ids = [set(self.view(n)) for n in self.nodes]
            except (OSError, RuntimeError, KeyError, ValueError):
                ids = None
            if ids and all(x == ids[0] for x in ids[1:]):
                took = time.time() - start
                break
            time.sleep(0.5)
        st = self.stats(scenario)
        worst = st.get("converge_s_max", 0)
        st["converge_s_max"] = None if took is None or worst is None else round(max(worst, took), 1)

    def converge(self, timeout_s, since):
        """Waits until every node lists the same videos, all terminal;
        answers the seconds it took from `since` (None: it never did) and
        the views."""
        start = time.time()
        views = None
        while time.time() - start < timeout_s:
            try:
                views = [self.view(n) for n in self.nodes]
            except (OSError, RuntimeError, KeyError, ValueError):
                time.sleep(1)
                continue
            same = all(v == views[0] for v in views[1:])
            terminal = all(x[0] in ("ready", "failed") for x in views[0].values())
            if same and terminal and set(self.accepted) - set(self.deleted) <= set(views[0]):
                return time.time() - since, views
            time.sleep(1)
        return None, views

    def judge(self, views):
        """The failures, by kind: lost, duplicated, resurrected, disagree,
        failed without a reason, unplayable."""
        bad = {"lost": [], "duplicated": [], "resurrected": [], "disagree": [],
               "failed_without_reason": [], "unplayable": [], "lost_update": [],
               "two_owners": []}
        want = set(self.accepted) - set(self.deleted)
        first = views[0] if views else {}
        for i, v in enumerate(views or []):
            if v != first:
                bad["disagree"].append(f"n{i}")
        for vid in want:
            if vid not in first:
                bad["lost"].append(vid)
        for vid in self.deleted:
            if vid in first:
                bad["resurrected"].append(vid)
        # Anything listed that no client was told about is a second video.
        for vid in set(first) - set(self.accepted):
            bad["duplicated"].append(vid)
        for vid, (state, reason, _, _) in first.items():
            if state == "failed" and not reason:
                bad["failed_without_reason"].append(vid)
        # A rename that was answered 200 is the title, unless a later one was.
        bad["lost_update"] = [vid for vid, title in self.titles.items()
                              if vid in first and first[vid][3] != title]
        # Each chunk was counted once, by an owner epoch that one node raised.
        bad["two_owners"] = []
        for vid in sorted(want & set(first)):
            if first[vid][0] != "ready":
                continue
            seen = None
            for n in self.nodes:
                status, c = n.json(f"/v1/admin/videos/{vid}/chunks")
                if status != 200:
                    bad["two_owners"].append(f"{vid}@n{n.i}: {status}")
                    continue
                owners = {}
                for t in c["takeovers"]:
                    if owners.setdefault(t["epoch"], t["node"]) != t["node"]:
                        bad["two_owners"].append(f"{vid}: epoch {t['epoch']} raised twice")
                for ch in c["chunks"]:
                    if not ch["done"] or not ch["node"] or ch["epoch"] not in owners:
                        bad["two_owners"].append(f"{vid}@n{n.i}: chunk {ch['index']} {ch}")
                if seen is not None and c != seen:
                    bad["disagree"].append(f"{vid} chunks n{n.i}")
                seen = c
        for vid in sorted(want & set(first)):
            if first[vid][0] != "ready":
                continue
            for n in self.nodes:
                got = frames(n.base + f"/media/{vid}/master-cmaf.m3u8")
                if got != self.frames:
                    bad["unplayable"].append(f"{vid}@n{n.i}:{got}")
        # Deleted ones answer 404 everywhere.
        for vid in self.deleted:
            for n in self.nodes:
                if n.get(f"/v1/videos/{vid}")[0] != 404 and vid not in bad["resurrected"]:
                    bad["resurrected"].append(vid)
        return bad


def metric_by_labels(nodes, name):
    """A Prometheus metric summed over nodes, per label set."""
    out = {}
    for n in nodes:
        try:
            status, body = n.get("/metrics", timeout=5)
        except OSError:
            continue
        for line in body.decode(errors="replace").splitlines():
            if line.startswith(name) and not line.startswith("#"):
                series, _, value = line.rpartition(" ")
                try:
                    out[series[len(name):] or "{}"] = out.get(series[len(name):] or "{}", 0) + float(value)
                except ValueError:
                    pass
    return {k: v for k, v in out.items() if v}


def metric_sum(nodes, name):
    """The sum over nodes of a Prometheus metric (every label set)."""
    total = 0.0
    for n in nodes:
        try:
            status, body = n.get("/metrics", timeout=5)
        except OSError:
            continue
        for line in body.decode(errors="replace").splitlines():
            if line.startswith(name) and not line.startswith("#"):
                try:
                    total += float(line.rsplit(" ", 1)[1])
                except ValueError:
                    pass
    return total


def frames(url):
    try:
        r = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                            "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", url],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=60)
    except subprocess.TimeoutExpired:
        return -2
    try:
        return int(r.stdout.strip().splitlines()[0])
    except (ValueError, IndexError):
        return -1


def nemesis_cycle(kind, net, nodes, checker, rng):
    """One cycle of `kind`: cut, load while cut, heal."""
    n = len(nodes)
    scenario = kind
    checker.stats(scenario)["cycles"] += 1
    def cut_groups(left):
        for i in left:
            for j in range(n):
                if j not in left:
                    net.cut(i, j)
                    net.cut(j, i)
    if kind == "isolate":  # one node alone
        cut_groups({rng.randrange(n)})
    elif kind == "split":  # a minority (1 of 3, 2 of 5) against the rest
        cut_groups(set(rng.sample(range(n), max(1, (n - 1) // 2))))
    elif kind == "one_way":
        a = rng.randrange(n)
        b = (a + 1 + rng.randrange(n - 1)) % n
        net.cut(a, b)
    if kind == "flap":
        a = rng.randrange(n)
        for _ in range(4):
            cut_groups({a})
            checker.upload(nodes[rng.randrange(n)], scenario)
            time.sleep(1)
            net.heal()
            time.sleep(1)
    else:
        time.sleep(3)  # long enough for membership to notice
        for node in nodes:
            checker.upload(node, scenario)
        checker.delete_one(nodes, scenario)
        checker.patch_one(nodes, scenario)
        checker.patch_one(nodes, scenario)
        checker.play_during_cut(nodes, scenario)
        time.sleep(2)
        net.heal()
    if kind == "kill_on_heal":
        victim = nodes[rng.randrange(n)]
        victim.kill9()
        time.sleep(1)
        victim.start()
    checker.agree_within(scenario)
    checker.retry_pending(nodes)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", required=True)
    p.add_argument("--clip", required=True)
    p.add_argument("--frames", type=int, required=True)
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--cycles", type=int, default=20)
    p.add_argument("--skew", type=int, default=60, help="seconds node n<last> is off")
    p.add_argument("--seed", type=int, default=int(time.time()))
    p.add_argument("--report")
    a = p.parse_args()
    if os.geteuid() != 0 or not shutil.which("ip"):
        print("SKIP: needs root and iproute2 for network namespaces")
        return 77
    # A timeout's SIGTERM still removes the network and stops the nodes.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    rng = random.Random(a.seed)
    random.seed(a.seed)
    log(f"seed {a.seed}")
    net = Net(a.nodes)
    work = tempfile.mkdtemp(prefix="reel-partition-")
    nodes = []
    code = 1
    try:
        try:
            net.up()
        except RuntimeError as e:
            print(f"SKIP: cannot make network namespaces here: {e}")
            return 77
        for i in range(a.nodes):
            skew = a.skew if i == a.nodes - 1 else 0
            nodes.append(Node(i, net, a.build, os.path.join(work, f"n{i}"), skew))
        for node in nodes:
            node.start()
        checker = Checker(nodes, a.clip, a.frames)
        # Some videos before any fault, to delete and to replicate.
        for node in nodes:
            checker.upload(node, "calm")
        time.sleep(3)
        kinds = ["isolate", "split", "one_way", "flap", "kill_on_heal"]
        for c in range(a.cycles):
            kind = kinds[c % len(kinds)]
            log(f"cycle {c + 1}/{a.cycles}: {kind}")
            nemesis_cycle(kind, net, nodes, checker, rng)
        net.heal()
        healed = time.time()
        time.sleep(3)
        for _ in range(3):  # the clients' last retries, until every upload has its 202
            if not checker.pending:
                break
            checker.retry_pending(nodes)
            time.sleep(2)
        took, views = checker.converge(240, healed)
        bad = checker.judge(views)
        for vid in bad["lost"]:
            st = checker.stats(checker.accepted[vid][1])
            st["lost"] = st.get("lost", 0) + 1
        for vid in bad["resurrected"]:
            st = checker.stats(checker.deleted.get(vid, "?"))
            st["resurrected"] = st.get("resurrected", 0) + 1
        report = {
            "seed": a.seed, "nodes": a.nodes, "cycles": a.cycles, "skew_s": a.skew,
            "accepted": len(checker.accepted), "deleted": len(checker.deleted),
            "refused": checker.refused, "never_accepted": len(checker.pending),
            "converged_s": None if took is None else round(took, 1),
            "by_scenario": checker.by_scenario,
            "anti_entropy_repairs": metric_sum(nodes, "reel_cluster_anti_entropy_repairs_total"),
            "failovers": metric_sum(nodes, "reel_cluster_failovers_total"),
            "messages_dropped": metric_by_labels(nodes, "reel_cluster_messages_dropped_total"),
            "failures": {k: v for k, v in bad.items() if v},
            "counts": {k: len(v) for k, v in bad.items()},
        }
        print(json.dumps(report, indent=1))
        if a.report:
            with open(a.report, "w") as f:
                json.dump(report, f, indent=1)
        code = 0 if took is not None and not any(bad.values()) else 1
        if code:
            for node in nodes:
                print(f"--- n{node.i} log tail")
                with open(node.data + ".log", errors="replace") as f:
                    print("".join(f.readlines()[-15:]))
    finally:
        for node in nodes:
            node.stop()
        net.down()
        if code:  # the nodes' logs, for whoever reads the failure
            keep = tempfile.mkdtemp(prefix="reel-partition-logs-")
            for node in nodes:
                shutil.copy(node.data + ".log", keep)
            print(f"logs kept in {keep}")
        shutil.rmtree(work, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
