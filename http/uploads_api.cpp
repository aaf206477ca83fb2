// The client Uploads API (seed 003): multipart upload answered 202, and the
// status endpoints with codes 1 pending, 3 processing, 5 uploading,
// 6 completed, 7 failed.

#include "http/gate.hpp"
#include "http/render.hpp"
#include "http/routes.hpp"
#include "http/upload_receiver.hpp"
#include "ops/util.hpp"
#include "storage/blob_store.hpp"

#include <unistd.h>

#include <cstdlib>

namespace reel::http {

namespace {

constexpr auto d = dialect::uploads;

nlohmann::ordered_json status_entry(const video_record& v) {
  auto [code, text] = upload_status(v.state);
  nlohmann::ordered_json j = {{"id", v.id},
                      {"filename", v.filename},
                      {"status", code},
                      {"status_text", text},
                      {"created_at", iso8601(v.created_ms)},
                      {"updated_at", iso8601(v.updated_ms)}};
  if (v.state == states::failed)
    j["error"] = v.failure_reason;
  return j;
}

/// A file name as stored: the last path component, printable, bounded.
std::string clean_filename(const std::string& name) {
  auto base = name.substr(name.find_last_of("/\\") + 1);
  std::string out;
  for (unsigned char c : base)
    if (c >= 0x20 && c != 0x7f)
      out.push_back(static_cast<char>(c));
  if (out.size() > 255)
    out.resize(255);
  return out.empty() ? "upload" : out;
}

} // namespace

/// The Uploads API's own words for a missing or bad key.
caf::expected<principal> uploads_key(node& n, const httplib::Request& req,
                                     httplib::Response& res) {
  auto who = bearer_key(n, req, res);
  if (!who && code_of(who.error()) == ec::unauthorized)
    return make_error(ec::unauthorized,
                      bearer_token(req).empty()
                        ? "Unauthenticated: send Authorization: Bearer "
                          "<api key>."
                        : "Unauthenticated: invalid API key.");
  return who;
}

void add_uploads_api(route_table& t, node& n) {
  t.authenticate_with(d, uploads_key);
  t.add({"POST", R"(/api/client/v1/uploads)", d, access::key,
         scopes::uploads_write, names_video::none, body_kind::stream,
         "uploads.create", [&n](call& c) {
           // A folder sent before the file is checked before the file is
           // read: a wrong one costs the client no upload.
           auto tenant = c.tenant();
           auto check = [&n, tenant](const std::string& name,
                                     const std::string& value) -> caf::error {
             if (name != "folder" || value.empty())
               return {};
             auto exists = valid_folder_path(value)
                             ? n.folder_exists(tenant, value)
                             : caf::expected<bool>{false};
             if (exists && !*exists)
               return make_error(ec::not_found, "Folder not found.");
             return {};
           };
           auto up = receive_multipart(c.req, *c.reader, n.blobs(), "video",
                                       n.config().max_upload_bytes, check);
           if (!up) {
             auto code = code_of(up.error());
             c.fail(up.error(), code == ec::too_large   ? "video"
                                : code == ec::not_found ? "folder"
                                                        : "");
             return;
           }
           tmp_guard tmp{up->has_file ? up->tmp_path : std::string{}};
           if (!up->has_file) {
             c.fail(ec::invalid_argument, "The video field is required.",
                    "video");
             return;
           }
           auto folder = up->fields.find("folder");
           if (folder == up->fields.end() || folder->second.empty()) {
             c.fail(ec::invalid_argument, "The folder field is required.",
                    "folder");
             return;
           }
           if (!valid_folder_path(folder->second)) {
             c.fail(ec::not_found, "Folder not found.", "folder");
             return;
           }
           video_record draft;
           for (auto [field, target] :
                {std::pair{"clip_start", &draft.clip_start_s},
                 std::pair{"clip_duration", &draft.clip_duration_s}}) {
             auto f = up->fields.find(field);
             if (f == up->fields.end() || f->second.empty())
               continue;
             char* end = nullptr;
             *target = std::strtod(f->second.c_str(), &end);
             if (*end != '\0' || !(*target >= 0) || *target > 1e7) {
               c.fail(ec::invalid_argument,
                      std::string{"The "} + field
                        + " field must be a number of seconds.",
                      field);
               return;
             }
           }
           draft.tenant = tenant;
           draft.folder = folder->second;
           draft.filename = clean_filename(up->filename);
           draft.title = draft.filename;
           draft.source_bytes = up->bytes;
           draft.source_sha256 = up->sha256;
           draft.created_via = "uploads";
           c.idempotent(draft);
           auto v = n.create_video(std::move(draft), up->tmp_path);
           if (!v) {
             if (code_of(v.error()) == ec::not_found)
               c.fail(ec::not_found, "Folder not found.", "folder");
             else
               c.fail(v.error());
             return;
           }
           tmp.release(); // adopted into the blob store
           auto [code, text] = upload_status(v->state);
           c.reply(202, {{"message", "Upload accepted and is now being processed."},
                         {"data",
                          {{"id", v->id}, {"status", code}, {"status_text", text}}}});
         }});

  t.add({"GET", R"(/api/client/v1/uploads)", d, access::key,
         scopes::videos_read, names_video::none, body_kind::none,
         "uploads.list", [&n](call& c) {
           // The 50 most recent of those uploaded through this API.
           auto page = n.list_videos(c.tenant(), node::video_filter{"", "uploads"},
                                     0, 50);
           if (!page) {
             c.fail(page.error());
             return;
           }
           auto data = nlohmann::ordered_json::array();
           for (auto& v : page->videos)
             data.push_back(status_entry(v));
           c.reply(200, {{"data", data}});
         }});

  t.add({"GET", R"(/api/client/v1/uploads/([^/]+))", d, access::key,
         scopes::videos_read, names_video::uuid, body_kind::none,
         "uploads.get", [](call& c) {
           auto entry = status_entry(*c.video);
           nlohmann::ordered_json data = {{"id", entry["id"]},
                                          {"filename", entry["filename"]},
                                          {"status", entry["status"]},
                                          {"status_text", entry["status_text"]}};
           if (entry.contains("error"))
             data["error"] = entry["error"];
           c.reply(200, {{"data", data}});
         }});
}

} // namespace reel::http
