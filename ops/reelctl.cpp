// reelctl: the operator's command line. Talks to any node's HTTP API with an
// admin key. Human tables by default, --json for scripts.
//
// Exit codes: 0 done, 1 the server refused or failed, 2 usage error,
// 3 the server could not be reached.

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

const char* usage = R"(usage: reelctl [--server URL] [--key KEY] [--json] COMMAND

Talks to a reel node's API. The server defaults to $REEL_SERVER or
http://127.0.0.1:8080; the key to $REEL_KEY.

commands:
  status                  the node at a glance: videos by state, tasks, disk
  nodes                   every node of the cluster: state, load, disk
  drain NODE              NODE stops taking work; its videos and replicas
                          move to the other nodes (then it can be stopped)
  undrain NODE            NODE takes work again
  videos list [--tenant T] [--limit N] [--offset N]
                          videos, newest first (admins may name a tenant)
  videos show ID          one video: state, source, renditions, history
  videos delete ID        delete a video and its media
  keys create --tenant T [--admin]
                          create an API key (printed once)
  folders list            the key's tenant's folders
  folders create PATH     create a folder, e.g. root/marketing

options:
  --server URL   node to talk to
  --key KEY      admin API key
  --json         print the server's JSON answer instead of a table
  --help         this text (also after any command)

exit codes: 0 done, 1 refused or failed, 2 usage error, 3 unreachable
)";

struct options {
  std::string server;
  std::string key;
  bool json = false;
  std::vector<std::string> args;
  std::string tenant;
  int limit = 25;
  int offset = 0;
  bool admin = false;
};

int die_usage(const std::string& msg) {
  std::fprintf(stderr, "reelctl: %s\n\n%s", msg.c_str(), usage);
  return 2;
}

struct answer {
  int status = 0;
  nlohmann::json body;
};

int call(const options& o, const std::string& method, const std::string& path,
         const nlohmann::json* payload, answer& out) {
  httplib::Client cli{o.server};
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
  if (!r) {
    std::fprintf(stderr, "reelctl: cannot reach %s: %s\n", o.server.c_str(),
                 httplib::to_string(r.error()).c_str());
    return 3;
  }
  out.status = r->status;
  out.body = nlohmann::json::parse(r->body, nullptr, false);
  if (r->status >= 400) {
    std::string msg = out.body.is_object() && out.body.contains("error")
                        ? out.body["error"].value("message", r->body)
                        : r->body;
    std::fprintf(stderr, "reelctl: %d: %s\n", r->status, msg.c_str());
    return 1;
  }
  return 0;
}

std::string str(const nlohmann::json& j) {
  if (j.is_string())
    return j.get<std::string>();
  if (j.is_null())
    return "-";
  return j.dump();
}

int cmd_status(const options& o) {
  answer a;
  if (int rc = call(o, "GET", "/v1/admin/status", nullptr, a))
    return rc;
  if (o.json) {
    std::printf("%s\n", a.body.dump(2).c_str());
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
    std::printf("%s\n", a.body.dump(2).c_str());
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
    return die_usage(std::string{on ? "drain" : "undrain"} + " needs a NODE");
  answer a;
  nlohmann::json body = nlohmann::json::object();
  if (int rc = call(o, "POST",
                    "/v1/admin/nodes/" + o.args[1] + (on ? "/drain" : "/undrain"),
                    &body, a))
    return rc;
  if (o.json)
    std::printf("%s\n", a.body.dump(2).c_str());
  else
    std::printf("%s is %s\n", str(a.body["node"]).c_str(),
                str(a.body["state"]).c_str());
  return 0;
}

int cmd_videos(const options& o) {
  if (o.args.size() < 2)
    return die_usage("videos needs list, show ID or delete ID");
  const auto& sub = o.args[1];
  answer a;
  if (sub == "list") {
    std::string path = "/v1/videos?limit=" + std::to_string(o.limit)
                       + "&offset=" + std::to_string(o.offset);
    if (!o.tenant.empty())
      path += "&tenant=" + o.tenant;
    if (int rc = call(o, "GET", path, nullptr, a))
      return rc;
    if (o.json) {
      std::printf("%s\n", a.body.dump(2).c_str());
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
  if ((sub == "show" || sub == "delete") && o.args.size() != 3)
    return die_usage("videos " + sub + " needs an ID");
  if (sub == "show") {
    if (int rc = call(o, "GET", "/v1/videos/" + o.args[2], nullptr, a))
      return rc;
    if (o.json) {
      std::printf("%s\n", a.body.dump(2).c_str());
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
  if (sub == "delete") {
    if (int rc = call(o, "DELETE", "/v1/videos/" + o.args[2], nullptr, a))
      return rc;
    if (!o.json)
      std::printf("deleted %s\n", o.args[2].c_str());
    return 0;
  }
  return die_usage("unknown videos command " + sub);
}

int cmd_keys(const options& o) {
  if (o.args.size() < 2 || o.args[1] != "create")
    return die_usage("keys needs create --tenant T");
  if (o.tenant.empty())
    return die_usage("keys create needs --tenant T");
  nlohmann::json body = {{"tenant", o.tenant}, {"admin", o.admin}};
  answer a;
  if (int rc = call(o, "POST", "/v1/keys", &body, a))
    return rc;
  if (o.json)
    std::printf("%s\n", a.body.dump(2).c_str());
  else
    std::printf("%s\n", str(a.body["key"]).c_str());
  return 0;
}

int cmd_folders(const options& o) {
  if (o.args.size() < 2)
    return die_usage("folders needs list or create PATH");
  answer a;
  if (o.args[1] == "list") {
    if (int rc = call(o, "GET", "/v1/folders", nullptr, a))
      return rc;
    if (o.json)
      std::printf("%s\n", a.body.dump(2).c_str());
    else
      for (auto& f : a.body["data"])
        std::printf("%s\n", str(f["path"]).c_str());
    return 0;
  }
  if (o.args[1] == "create" && o.args.size() == 3) {
    nlohmann::json body = {{"path", o.args[2]}};
    if (int rc = call(o, "POST", "/v1/folders", &body, a))
      return rc;
    if (o.json)
      std::printf("%s\n", a.body.dump(2).c_str());
    else
      std::printf("created %s\n", str(a.body["path"]).c_str());
    return 0;
  }
  return die_usage("folders needs list or create PATH");
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
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* name) -> const char* {
      if (i + 1 >= argc) {
        die_usage(std::string{name} + " needs a value");
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      std::fputs(usage, stdout);
      return 0;
    } else if (a == "--server") {
      o.server = value("--server");
    } else if (a == "--key") {
      o.key = value("--key");
    } else if (a == "--json") {
      o.json = true;
    } else if (a == "--tenant") {
      o.tenant = value("--tenant");
    } else if (a == "--admin") {
      o.admin = true;
    } else if (a == "--limit" || a == "--offset") {
      char* end = nullptr;
      auto v = std::strtol(value(a.c_str()), &end, 10);
      if (!end || *end != '\0' || v < 0)
        return die_usage(a + " needs a number");
      (a == "--limit" ? o.limit : o.offset) = static_cast<int>(v);
    } else if (a.rfind("--", 0) == 0) {
      return die_usage("unknown option " + a);
    } else {
      o.args.push_back(a);
    }
  }
  if (o.args.empty())
    return die_usage("no command");
  while (!o.server.empty() && o.server.back() == '/')
    o.server.pop_back();
  const auto& cmd = o.args[0];
  if (cmd == "status")
    return cmd_status(o);
  if (cmd == "videos")
    return cmd_videos(o);
  if (cmd == "nodes")
    return cmd_nodes(o);
  if (cmd == "drain" || cmd == "undrain")
    return cmd_drain(o, cmd == "drain");
  if (cmd == "keys")
    return cmd_keys(o);
  if (cmd == "folders")
    return cmd_folders(o);
  return die_usage("unknown command " + cmd);
}
