// reelctl: the operator's command line. Talks to any node's HTTP API with an
// admin key. Human tables by default, --json for scripts.
//
// Exit codes: 0 done, 1 the server refused or failed, 2 usage error,
// 3 the server could not be reached.

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

namespace {

using json = nlohmann::ordered_json;

const char* usage = R"(usage: reelctl [--server URL] [--key KEY] [--json] COMMAND

Talks to a reel node's API. The server defaults to $REEL_SERVER or
http://127.0.0.1:8080; the key to $REEL_KEY.

commands:
  status                  the node at a glance: videos by state, tasks, disk
  nodes                   every node of the cluster: state, load, disk
  drain NODE              NODE stops taking work; its videos and replicas
                          move to the other nodes (then it can be stopped)
  undrain NODE            NODE takes work again
  videos list [--state S] [--tenant T] [--limit N] [--offset N]
                          videos, newest first (admins may name a tenant)
  videos show ID          one video: state, source, renditions, history
  videos retry ID         start a failed video again from what it has
  videos delete ID        delete a video and its media
  tasks list [--node N]   transcode tasks of every node (or of N): what
                          runs where and for how long, what waits
  tasks cancel ID [--node N]
                          drop a queued task (its video fails)
  tasks requeue ID [--node N]
                          give up a running (stuck) task and queue it again
  keys create --tenant T [--admin] [--scopes S,...]
                          create an API key (printed once)
  keys list [--tenant T]  API keys (never the keys themselves)
  keys revoke ID          revoke a key everywhere
  tenants create T        a new tenant and its first key (printed once)
  tenants list            tenants with their keys and videos
  folders list            the key's tenant's folders
  folders create PATH     create a folder, e.g. root/marketing
  gc [--older-than SECONDS] [--all]
                          remove abandoned uploads and orphaned blobs

options:
  --server URL   node to talk to
  --key KEY      admin API key
  --json         print the server's JSON answer instead of a table
  --help         this text; after a command, that command's usage

exit codes: 0 done, 1 refused or failed, 2 usage error, 3 unreachable
)";

/// Each command's usage (`reelctl CMD --help`) and the options it takes
/// besides --server, --key, --json and --help.
struct command_help {
  const char* path;
  const char* text;
  std::set<std::string> options;
};

const std::vector<command_help>& commands() {
  static const std::vector<command_help> all = {
    {"status", R"(usage: reelctl status

The answering node at a glance: videos of every tenant by state, its
transcode tasks (queued, running) and disk use (blobs, database).
)", {}},
    {"nodes", R"(usage: reelctl nodes

Every node of the cluster as the answering node (*) sees it: state, URL,
queued and running tasks, disk use, when it was last heard from.
)", {}},
    {"drain", R"(usage: reelctl drain NODE

NODE stops taking work: it leaves the placement, so the other nodes take
over its unfinished videos and its copies of media. Then it can be stopped.
)", {}},
    {"undrain", R"(usage: reelctl undrain NODE

NODE takes work again.
)", {}},
    {"videos", R"(usage: reelctl videos list|show|retry|delete ...

  videos list [--state S] [--tenant T] [--limit N] [--offset N]
  videos show ID
  videos retry ID
  videos delete ID

See reelctl videos COMMAND --help.
)", {}},
    {"videos list", R"(usage: reelctl videos list [--state S] [--tenant T]
                          [--limit N] [--offset N]

Videos, newest first.

  --state S    only those in state S: created, uploaded, probing,
               transcoding, packaging, ready, failed
  --tenant T   another tenant's (admin keys)
  --limit N    at most N (1-100, default 25)
  --offset N   skip the first N
)", {"--state", "--tenant", "--limit", "--offset"}},
    {"videos show", R"(usage: reelctl videos show ID

One video: state, failure reason, source, renditions, and its history
(every state entered, with its time and reason).
)", {}},
    {"videos retry", R"(usage: reelctl videos retry ID

Starts a failed video again from what it has: probed again if it never was,
else transcoded again keeping the chunks already encoded. Refused (exit 1)
for a video that is not failed, or has no source.
)", {}},
    {"videos delete", R"(usage: reelctl videos delete ID

Deletes a video: its record and all its files, on every node.
)", {}},
    {"tasks", R"(usage: reelctl tasks list|cancel|requeue ...

  tasks list [--node N]
  tasks cancel ID [--node N]
  tasks requeue ID [--node N]

See reelctl tasks COMMAND --help.
)", {}},
    {"tasks list", R"(usage: reelctl tasks list [--node N]

The transcode tasks of every node of the cluster (GET /v1/admin/tasks on
each): running ones with how long they have run, then the queue in the
order it is served. IDs are per node.

  --node N   only node N's
)", {"--node"}},
    {"tasks cancel", R"(usage: reelctl tasks cancel ID [--node N]

Drops queued task ID: its video fails with "cancelled by an operator"
(retry it with reelctl videos retry). A running task is refused: requeue it
instead.

  --node N   the task is node N's (default: the --server node's)
)", {"--node"}},
    {"tasks requeue", R"(usage: reelctl tasks requeue ID [--node N]

Gives up running task ID (e.g. stuck) and queues it again, first. A new
worker takes the old one's place; the old one's result, if it ever comes,
is ignored. A queued task is refused.

  --node N   the task is node N's (default: the --server node's)
)", {"--node"}},
    {"keys", R"(usage: reelctl keys create|list|revoke ...

  keys create --tenant T [--admin] [--scopes S,...]
  keys list [--tenant T]
  keys revoke ID

See reelctl keys COMMAND --help.
)", {}},
    {"keys create", R"(usage: reelctl keys create --tenant T [--admin]
                          [--scopes S,...]

Creates an API key for tenant T and prints it: it is shown only once.

  --tenant T      the tenant (a new one if none has the name)
  --admin         an admin key
  --scopes S,...  a personal access token limited to these scopes, on
                  every API: videos:read, videos:write, uploads:write,
                  folders:read, folders:write, webhooks:read,
                  webhooks:write, keys:admin, cluster:admin
                  (docs/routes.md lists each route's)
)", {"--tenant", "--admin", "--scopes"}},
    {"keys list", R"(usage: reelctl keys list [--tenant T]

API keys, oldest first: id (the first 12 hex digits of the key's SHA-256,
for keys revoke), the key's first characters, tenant, admin, scopes,
creation time. Never the keys themselves.

  --tenant T   only tenant T's
)", {"--tenant"}},
    {"keys revoke", R"(usage: reelctl keys revoke ID

Revokes key ID (from keys list) on every node: it gets 401 from then on,
and so do tokens made from it. The key making the request cannot revoke
itself.
)", {}},
    {"tenants", R"(usage: reelctl tenants create|list ...

  tenants create T
  tenants list

See reelctl tenants COMMAND --help.
)", {}},
    {"tenants create", R"(usage: reelctl tenants create T

Creates tenant T (1-64 of a-z, 0-9, _ and -) with its first key, not an
admin key, and prints the key: it is shown only once. Refused if T has keys
already.
)", {}},
    {"tenants list", R"(usage: reelctl tenants list

Every tenant (the names keys carry), with its keys and videos.
)", {}},
    {"folders", R"(usage: reelctl folders list|create ...

  folders list
  folders create PATH

See reelctl folders COMMAND --help.
)", {}},
    {"folders list", R"(usage: reelctl folders list

The key's tenant's folders.
)", {}},
    {"folders create", R"(usage: reelctl folders create PATH

Creates a folder in the key's tenant, e.g. root/marketing (its parent must
exist).
)", {}},
    {"gc", R"(usage: reelctl gc [--older-than SECONDS] [--all]

Removes what nobody needs any more and says what it removed, with counts
and bytes: files under tmp/ (uploads cut off), idle tus uploads, the parts
of chunked uploads abandoned, blob directories of ids without a video
record, in a cluster the copies of media a node no longer holds by
placement, and delivered or failed webhook deliveries. Only what was last
touched more than SECONDS ago.

  --older-than SECONDS   default 86400 (a day)
  --all                  on every node of the cluster (default: the
                         --server node only)
)", {"--older-than", "--all"}},
  };
  return all;
}

/// The most specific command whose path the positional arguments start
/// with ("keys create", else "keys"); nullptr when none.
const command_help* find_command(const std::vector<std::string>& args) {
  const command_help* best = nullptr;
  for (auto& c : commands()) {
    std::string path = c.path;
    std::string two = args.size() >= 2 ? args[0] + " " + args[1] : "";
    if (path == two || (!args.empty() && path == args[0] && !best))
      best = &c;
  }
  return best;
}

struct options {
  std::string server;
  std::string key;
  bool json = false;
  std::vector<std::string> args;
  std::set<std::string> given; // command options given
  std::string tenant;
  std::string state;
  std::string scopes;
  std::string node;
  int limit = 25;
  int offset = 0;
  long long older_than = 86400;
  bool admin = false;
  bool all = false;
};

/// A usage error: the reason, then the command's usage (or reelctl's).
int die_usage(const options& o, const std::string& msg) {
  auto* c = find_command(o.args);
  std::fprintf(stderr, "reelctl: %s\n\n%s", msg.c_str(), c ? c->text : usage);
  return 2;
}

/// Percent-encodes one path segment or query value.
std::string enc(const std::string& s) {
  static const char* hexd = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hexd[c >> 4];
      out += hexd[c & 15];
    }
  }
  return out;
}

struct answer {
  int status = 0;
  json body;
};

/// Calls `base` + `path`; prints the reason of a failure on stderr (with
/// `who`, the node, when given). 0, 1 (refused or failed) or 3 (unreachable).
int call(const options& o, const std::string& base, const std::string& method,
         const std::string& path, const json* payload, answer& out,
         const std::string& who = {}) {
  httplib::Client cli{base};
  cli.set_connection_timeout(5);
  cli.set_read_timeout(60);
  httplib::Headers headers{{"Authorization", "Bearer " + o.key}};
  httplib::Result r{nullptr, httplib::Error::Unknown};
  if (method == "GET")
    r = cli.Get(path.c_str(), headers);
  else if (method == "DELETE")
    r = cli.Delete(path.c_str(), headers);
  else
    r = cli.Post(path.c_str(), headers, payload ? payload->dump() : "{}",
                 "application/json");
  auto prefix = who.empty() ? std::string{} : who + ": ";
  if (!r) {
    std::fprintf(stderr, "reelctl: %scannot reach %s: %s\n", prefix.c_str(),
                 base.c_str(), httplib::to_string(r.error()).c_str());
    return 3;
  }
  out.status = r->status;
  out.body = json::parse(r->body, nullptr, false);
  if (r->status >= 400) {
    std::string msg = out.body.is_object() && out.body.contains("error")
                        ? out.body["error"].value("message", r->body)
                        : r->body;
    std::fprintf(stderr, "reelctl: %s%d: %s\n", prefix.c_str(), r->status,
                 msg.c_str());
    return 1;
  }
  return 0;
}

int call(const options& o, const std::string& method, const std::string& path,
         const json* payload, answer& out) {
  return call(o, o.server, method, path, payload, out);
}

std::string str(const json& j) {
  if (j.is_string())
    return j.get<std::string>();
  if (j.is_null())
    return "-";
  return j.dump();
}

void print_json(const json& j) {
  std::printf("%s\n", j.dump(2).c_str());
}

/// A node of the cluster and where to reach it.
struct target {
  std::string node;
  std::string url;
  std::string state;
};

/// The nodes to ask: every one, or `only`. The answering node is reached
/// at --server (its public URL may name a proxy).
int targets(const options& o, const std::string& only,
            std::vector<target>& out) {
  answer a;
  if (int rc = call(o, "GET", "/v1/admin/nodes", nullptr, a))
    return rc;
  for (auto& m : a.body["data"]) {
    auto id = str(m["node"]);
    if (!only.empty() && id != only)
      continue;
    out.push_back(target{id, m.value("self", false) ? o.server : str(m["url"]),
                         str(m["state"])});
  }
  if (!only.empty() && out.empty()) {
    std::fprintf(stderr, "reelctl: no node %s in the cluster\n", only.c_str());
    return 1;
  }
  return 0;
}

/// The worse of two exit codes: unreachable over refused over done.
int worse(int a, int b) {
  if (a == 3 || b == 3)
    return 3;
  return a ? a : b;
}

int cmd_status(const options& o) {
  answer a;
  if (int rc = call(o, "GET", "/v1/admin/status", nullptr, a))
    return rc;
  if (o.json) {
    print_json(a.body);
    return 0;
  }
  std::printf("node      %s (%s)\n", str(a.body["node"]).c_str(),
              str(a.body["status"]).c_str());
  std::printf("url       %s\n", str(a.body["public_url"]).c_str());
  std::printf("workers   %s\n", str(a.body["workers"]).c_str());
  std::printf("tasks     %s queued, %s running\n",
              str(a.body["tasks"]["queued"]).c_str(),
              str(a.body["tasks"]["running"]).c_str());
  std::printf("videos   ");
  for (auto& [state, n] : a.body["videos"].items())
    std::printf(" %s=%s", state.c_str(), str(n).c_str());
  std::printf("\ndisk      blobs %s bytes, db %s bytes\n",
              str(a.body["disk"]["blob_bytes"]).c_str(),
              str(a.body["disk"]["db_bytes"]).c_str());
  return 0;
}

int cmd_nodes(const options& o) {
  answer a;
  if (int rc = call(o, "GET", "/v1/admin/nodes", nullptr, a))
    return rc;
  if (o.json) {
    print_json(a.body);
    return 0;
  }
  std::printf("%-12s  %-9s  %-22s  %-7s  %-7s  %-12s  %s\n", "NODE", "STATE",
              "URL", "QUEUED", "RUNNING", "DISK", "LAST SEEN");
  for (auto& m : a.body["data"]) {
    auto name = str(m["node"]) + (m.value("self", false) ? " *" : "");
    std::printf("%-12s  %-9s  %-22s  %-7s  %-7s  %-12s  %s\n", name.c_str(),
                str(m["state"]).c_str(), str(m["url"]).c_str(),
                str(m["tasks"]["queued"]).c_str(),
                str(m["tasks"]["running"]).c_str(),
                str(m["disk_bytes"]).c_str(), str(m["last_seen"]).c_str());
  }
  return 0;
}

int cmd_drain(const options& o, bool on) {
  if (o.args.size() != 2)
    return die_usage(o, std::string{on ? "drain" : "undrain"}
                          + " needs a NODE");
  answer a;
  json body = json::object();
  if (int rc = call(o, "POST",
                    "/v1/admin/nodes/" + enc(o.args[1])
                      + (on ? "/drain" : "/undrain"),
                    &body, a))
    return rc;
  if (o.json)
    print_json(a.body);
  else
    std::printf("%s is %s\n", str(a.body["node"]).c_str(),
                str(a.body["state"]).c_str());
  return 0;
}

int cmd_videos(const options& o) {
  const auto& sub = o.args[1];
  answer a;
  if (sub == "list") {
    if (o.args.size() != 2)
      return die_usage(o, "videos list takes no arguments");
    std::string path = "/v1/videos?limit=" + std::to_string(o.limit)
                       + "&offset=" + std::to_string(o.offset);
    if (!o.tenant.empty())
      path += "&tenant=" + enc(o.tenant);
    if (!o.state.empty())
      path += "&state=" + enc(o.state);
    if (int rc = call(o, "GET", path, nullptr, a))
      return rc;
    if (o.json) {
      print_json(a.body);
      return 0;
    }
    std::printf("%-36s  %-11s  %-8s  %-24s  %s\n", "ID", "STATE", "TENANT",
                "CREATED", "FILE");
    for (auto& v : a.body["data"])
      std::printf("%-36s  %-11s  %-8s  %-24s  %s\n", str(v["id"]).c_str(),
                  str(v["state"]).c_str(), str(v["tenant"]).c_str(),
                  str(v["created_at"]).c_str(), str(v["filename"]).c_str());
    std::printf("(%s of %s)\n", std::to_string(a.body["data"].size()).c_str(),
                str(a.body["pagination"]["total"]).c_str());
    return 0;
  }
  if (o.args.size() != 3)
    return die_usage(o, "videos " + sub + " needs an ID");
  auto path = "/v1/videos/" + enc(o.args[2]);
  if (sub == "show") {
    if (int rc = call(o, "GET", path, nullptr, a))
      return rc;
    if (o.json) {
      print_json(a.body);
      return 0;
    }
    auto& v = a.body;
    std::printf("id        %s\nstate     %s\ntenant    %s\nfolder    %s\n"
                "file      %s (%s bytes)\n",
                str(v["id"]).c_str(), str(v["state"]).c_str(),
                str(v["tenant"]).c_str(), str(v["folder"]).c_str(),
                str(v["filename"]).c_str(),
                str(v["source"]["size_bytes"]).c_str());
    if (!v["failure_reason"].is_null())
      std::printf("failure   %s\n", str(v["failure_reason"]).c_str());
    std::printf("progress  %s%%\n", str(v["progress"]["percent"]).c_str());
    if (!v["playback"].is_null())
      std::printf("hls       %s\n", str(v["playback"]["hls"]).c_str());
    for (auto& r : v["renditions"]) {
      if (r.contains("width"))
        std::printf("rendition %-6s %sx%s %s bit/s\n", str(r["name"]).c_str(),
                    str(r["width"]).c_str(), str(r["height"]).c_str(),
                    str(r["bandwidth"]).c_str());
      else
        std::printf("rendition %-6s %s bit/s\n", str(r["name"]).c_str(),
                    str(r["bandwidth"]).c_str());
    }
    std::printf("history\n");
    for (auto& h : v["history"])
      std::printf("  %s  %-11s %s\n", str(h["at"]).c_str(),
                  str(h["state"]).c_str(),
                  h.contains("reason") ? str(h["reason"]).c_str() : "");
    return 0;
  }
  if (sub == "retry") {
    json body = json::object();
    if (int rc = call(o, "POST", path + "/retry", &body, a))
      return rc;
    if (o.json)
      print_json(a.body);
    else
      std::printf("%s is %s again\n", str(a.body["id"]).c_str(),
                  str(a.body["state"]).c_str());
    return 0;
  }
  // delete
  if (int rc = call(o, "DELETE", path, nullptr, a))
    return rc;
  if (!o.json)
    std::printf("deleted %s\n", o.args[2].c_str());
  return 0;
}

std::string task_line(const json& t) {
  auto what = str(t["kind"]);
  if (t["kind"] == "chunk")
    what += " " + str(t["index"]);
  return "task " + str(t["id"]) + " (" + what + " of " + str(t["video"]) + ")";
}

int cmd_tasks(const options& o) {
  const auto& sub = o.args[1];
  if (sub == "list") {
    if (o.args.size() != 2)
      return die_usage(o, "tasks list takes no arguments");
    std::vector<target> nodes;
    if (int rc = targets(o, o.node, nodes))
      return rc;
    int rc = 0;
    json rows = json::array();
    for (auto& n : nodes) {
      if (n.state == "down") {
        std::fprintf(stderr, "reelctl: %s is down: its tasks are not shown\n",
                     n.node.c_str());
        rc = worse(rc, 3);
        continue;
      }
      answer a;
      int r = call(o, n.url, "GET", "/v1/admin/tasks", nullptr, a, n.node);
      if (r) {
        rc = worse(rc, r);
        continue;
      }
      for (auto& t : a.body["data"]) {
        json row = {{"node", a.body.value("node", n.node)}};
        row.update(t);
        rows.push_back(row);
      }
    }
    if (o.json) {
      print_json(json{{"data", rows}});
      return rc;
    }
    std::printf("%-12s  %-6s  %-8s  %-10s  %-5s  %-4s  %-36s  %-24s  %s\n",
                "NODE", "ID", "STATE", "KIND", "INDEX", "PRI", "VIDEO",
                "QUEUED AT", "RUNNING");
    for (auto& t : rows) {
      char running[32] = "-";
      if (t["running_s"].is_number())
        std::snprintf(running, sizeof(running), "%.1fs",
                      t["running_s"].get<double>());
      std::printf("%-12s  %-6s  %-8s  %-10s  %-5s  %-4s  %-36s  %-24s  %s\n",
                  str(t["node"]).c_str(), str(t["id"]).c_str(),
                  str(t["state"]).c_str(), str(t["kind"]).c_str(),
                  str(t["index"]).c_str(), str(t["priority"]).c_str(),
                  str(t["video"]).c_str(), str(t["queued_at"]).c_str(),
                  running);
    }
    std::printf("(%zu task%s on %zu node%s)\n", rows.size(),
                rows.size() == 1 ? "" : "s", nodes.size(),
                nodes.size() == 1 ? "" : "s");
    return rc;
  }
  if (o.args.size() != 3)
    return die_usage(o, "tasks " + sub + " needs a task ID (from tasks list)");
  const auto& id = o.args[2];
  if (id.empty() || id.size() > 19
      || id.find_first_not_of("0123456789") != std::string::npos)
    return die_usage(o, "a task ID is a number (from tasks list)");
  std::string base = o.server;
  if (!o.node.empty()) {
    std::vector<target> nodes;
    if (int rc = targets(o, o.node, nodes))
      return rc;
    base = nodes.front().url;
  }
  answer a;
  json body = json::object();
  if (int rc = call(o, base, "POST", "/v1/admin/tasks/" + id + "/" + sub,
                    &body, a, o.node))
    return rc;
  if (o.json)
    print_json(a.body);
  else if (sub == "cancel")
    std::printf("cancelled %s on %s\n", task_line(a.body).c_str(),
                str(a.body["node"]).c_str());
  else
    std::printf("requeued %s on %s: it runs again first\n",
                task_line(a.body).c_str(), str(a.body["node"]).c_str());
  return 0;
}

int cmd_keys(const options& o) {
  const auto& sub = o.args[1];
  answer a;
  if (sub == "create") {
    if (o.args.size() != 2)
      return die_usage(o, "keys create takes no arguments but options");
    if (o.tenant.empty())
      return die_usage(o, "keys create needs --tenant T");
    json body = {{"tenant", o.tenant}, {"admin", o.admin}};
    if (!o.scopes.empty()) {
      json scopes = json::array();
      size_t start = 0;
      while (start <= o.scopes.size()) {
        auto end = o.scopes.find(',', start);
        if (end == std::string::npos)
          end = o.scopes.size();
        if (end > start)
          scopes.push_back(o.scopes.substr(start, end - start));
        start = end + 1;
      }
      body["scopes"] = scopes;
    }
    if (int rc = call(o, "POST", "/v1/keys", &body, a))
      return rc;
    if (o.json)
      print_json(a.body);
    else
      std::printf("%s\n", str(a.body["key"]).c_str());
    return 0;
  }
  if (sub == "list") {
    if (o.args.size() != 2)
      return die_usage(o, "keys list takes no arguments");
    auto path = std::string{"/v1/keys"};
    if (!o.tenant.empty())
      path += "?tenant=" + enc(o.tenant);
    if (int rc = call(o, "GET", path, nullptr, a))
      return rc;
    if (o.json) {
      print_json(a.body);
      return 0;
    }
    std::printf("%-12s  %-12s  %-16s  %-5s  %-24s  %s\n", "ID", "PREFIX",
                "TENANT", "ADMIN", "CREATED", "SCOPES");
    for (auto& k : a.body["data"]) {
      std::string scopes;
      for (auto& s : k["scopes"])
        scopes += (scopes.empty() ? "" : ",") + str(s);
      std::printf("%-12s  %-12s  %-16s  %-5s  %-24s  %s\n",
                  str(k["id"]).c_str(), str(k["prefix"]).c_str(),
                  str(k["tenant"]).c_str(),
                  k.value("admin", false) ? "yes" : "no",
                  str(k["created_at"]).c_str(),
                  scopes.empty() ? "all" : scopes.c_str());
    }
    return 0;
  }
  // revoke
  if (o.args.size() != 3)
    return die_usage(o, "keys revoke needs a key ID (from keys list)");
  if (int rc = call(o, "DELETE", "/v1/keys/" + enc(o.args[2]), nullptr, a))
    return rc;
  if (o.json)
    print_json(json{{"revoked", o.args[2]}});
  else
    std::printf("revoked key %s\n", o.args[2].c_str());
  return 0;
}

int cmd_tenants(const options& o) {
  answer a;
  if (o.args[1] == "list") {
    if (o.args.size() != 2)
      return die_usage(o, "tenants list takes no arguments");
    if (int rc = call(o, "GET", "/v1/tenants", nullptr, a))
      return rc;
    if (o.json) {
      print_json(a.body);
      return 0;
    }
    std::printf("%-24s  %-6s  %s\n", "TENANT", "KEYS", "VIDEOS");
    for (auto& t : a.body["data"])
      std::printf("%-24s  %-6s  %s\n", str(t["tenant"]).c_str(),
                  str(t["keys"]).c_str(), str(t["videos"]).c_str());
    return 0;
  }
  // create
  if (o.args.size() != 3)
    return die_usage(o, "tenants create needs a tenant name");
  json body = {{"tenant", o.args[2]}};
  if (int rc = call(o, "POST", "/v1/tenants", &body, a))
    return rc;
  if (o.json) {
    print_json(a.body);
  } else {
    std::printf("%s\n", str(a.body["key"]).c_str());
    std::fprintf(stderr, "reelctl: tenant %s created; its key (above) is "
                         "shown only once\n",
                 str(a.body["tenant"]).c_str());
  }
  return 0;
}

int cmd_folders(const options& o) {
  answer a;
  if (o.args[1] == "list") {
    if (o.args.size() != 2)
      return die_usage(o, "folders list takes no arguments");
    if (int rc = call(o, "GET", "/v1/folders", nullptr, a))
      return rc;
    if (o.json)
      print_json(a.body);
    else
      for (auto& f : a.body["data"])
        std::printf("%s\n", str(f["path"]).c_str());
    return 0;
  }
  if (o.args.size() != 3)
    return die_usage(o, "folders create needs a PATH");
  json body = {{"path", o.args[2]}};
  if (int rc = call(o, "POST", "/v1/folders", &body, a))
    return rc;
  if (o.json)
    print_json(a.body);
  else
    std::printf("created %s\n", str(a.body["path"]).c_str());
  return 0;
}

int cmd_gc(const options& o) {
  if (o.args.size() != 1)
    return die_usage(o, "gc takes no arguments but options");
  std::vector<target> nodes;
  if (o.all) {
    if (int rc = targets(o, "", nodes))
      return rc;
  } else {
    nodes.push_back(target{"", o.server, "up"});
  }
  json body = {{"older_than_s", o.older_than}};
  json answers = json::array();
  int rc = 0;
  for (auto& n : nodes) {
    if (n.state == "down") {
      std::fprintf(stderr, "reelctl: %s is down: not collected\n",
                   n.node.c_str());
      rc = worse(rc, 3);
      continue;
    }
    answer a;
    if (int r = call(o, n.url, "POST", "/v1/admin/gc", &body, a, n.node)) {
      rc = worse(rc, r);
      continue;
    }
    answers.push_back(a.body);
  }
  if (o.json) {
    print_json(o.all ? json{{"data", answers}}
                     : (answers.empty() ? json::object() : answers[0]));
    return rc;
  }
  for (auto& a : answers) {
    std::printf("%s: removed what was untouched for %s s\n",
                str(a["node"]).c_str(), str(a["older_than_s"]).c_str());
    std::printf("  %-12s  %8s  %14s\n", "KIND", "COUNT", "BYTES");
    for (auto& [kind, c] : a["removed"].items())
      std::printf("  %-12s  %8s  %14s\n", kind.c_str(), str(c["count"]).c_str(),
                  str(c["bytes"]).c_str());
    std::printf("  %-12s  %8s  %14s\n", "total",
                str(a["total"]["count"]).c_str(),
                str(a["total"]["bytes"]).c_str());
  }
  return rc;
}

/// Whether `s` is a whole number from lo to hi.
bool whole(const std::string& s, long long lo, long long hi, long long& out) {
  if (s.empty() || s.size() > 18
      || s.find_first_not_of("0123456789") != std::string::npos)
    return false;
  out = std::stoll(s);
  return out >= lo && out <= hi;
}

} // namespace

int main(int argc, char** argv) {
  options o;
  if (auto* s = std::getenv("REEL_SERVER"))
    o.server = s;
  if (auto* k = std::getenv("REEL_KEY"))
    o.key = k;
  if (o.server.empty())
    o.server = "http://127.0.0.1:8080";
  bool help = false;
  std::string error; // the first usage error, reported after --help had
                     // its chance
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    std::string value;
    bool inline_value = false;
    if (a.rfind("--", 0) == 0 && a.find('=') != std::string::npos) {
      value = a.substr(a.find('=') + 1);
      a = a.substr(0, a.find('='));
      inline_value = true;
    }
    auto take = [&]() -> bool {
      if (inline_value)
        return true;
      if (i + 1 >= argc) {
        if (error.empty())
          error = a + " needs a value";
        return false;
      }
      value = argv[++i];
      return true;
    };
    auto flag = [&]() {
      if (inline_value && error.empty())
        error = a + " takes no value";
    };
    if (a == "--help" || a == "-h") {
      help = true;
    } else if (a == "--server") {
      if (take())
        o.server = value;
    } else if (a == "--key") {
      if (take())
        o.key = value;
    } else if (a == "--json") {
      flag();
      o.json = true;
    } else if (a == "--admin" || a == "--all") {
      flag();
      o.given.insert(a);
      (a == "--admin" ? o.admin : o.all) = true;
    } else if (a == "--tenant" || a == "--state" || a == "--scopes"
               || a == "--node") {
      o.given.insert(a);
      if (take())
        (a == "--tenant"  ? o.tenant
         : a == "--state" ? o.state
         : a == "--node"  ? o.node
                          : o.scopes) = value;
    } else if (a == "--limit" || a == "--offset" || a == "--older-than") {
      o.given.insert(a);
      long long v = 0;
      long long hi = a == "--older-than" ? 3153600000LL : 2147483647LL;
      if (take() && !whole(value, 0, hi, v) && error.empty())
        error = a + " needs a whole number";
      if (a == "--limit")
        o.limit = static_cast<int>(v);
      else if (a == "--offset")
        o.offset = static_cast<int>(v);
      else
        o.older_than = v;
    } else if (a.rfind("--", 0) == 0) {
      if (error.empty())
        error = "unknown option " + a;
    } else {
      o.args.push_back(a);
    }
  }
  if (help) {
    auto* c = find_command(o.args);
    std::fputs(c ? c->text : usage, stdout);
    return 0;
  }
  if (o.args.empty())
    return die_usage(o, error.empty() ? "no command" : error);
  const auto& cmd = o.args[0];
  auto* c = find_command(o.args);
  if (!c)
    return die_usage(o, "unknown command " + cmd);
  // A command with subcommands needs one of them.
  bool group = cmd == "videos" || cmd == "tasks" || cmd == "keys"
               || cmd == "tenants" || cmd == "folders";
  if (group && c->path == cmd)
    return die_usage(o, o.args.size() < 2 ? cmd + " needs a command"
                                          : "unknown command " + cmd + " "
                                              + o.args[1]);
  if (!error.empty())
    return die_usage(o, error);
  for (auto& opt : o.given)
    if (c->options.count(opt) == 0)
      return die_usage(o, std::string{c->path} + " does not take " + opt);
  while (!o.server.empty() && o.server.back() == '/')
    o.server.pop_back();
  if (cmd == "status")
    return o.args.size() == 1 ? cmd_status(o)
                              : die_usage(o, "status takes no arguments");
  if (cmd == "nodes")
    return o.args.size() == 1 ? cmd_nodes(o)
                              : die_usage(o, "nodes takes no arguments");
  if (cmd == "drain" || cmd == "undrain")
    return cmd_drain(o, cmd == "drain");
  if (cmd == "videos")
    return cmd_videos(o);
  if (cmd == "tasks")
    return cmd_tasks(o);
  if (cmd == "keys")
    return cmd_keys(o);
  if (cmd == "tenants")
    return cmd_tenants(o);
  if (cmd == "folders")
    return cmd_folders(o);
  return cmd_gc(o);
}
