#pragma once

// tus 1.0.0 resumable uploads (https://tus.io/protocols/resumable-upload),
// the way Gcore's Streaming API takes a local file: the client asks for a
// token for a created video, then sends the file with any tus client to
// /upload/, with metadata naming the video and carrying the token.

#include "http/gate.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace reel::http {

/// A token that lets its holder upload the source of video `video_id` (a
/// UUID) through tus, valid `ttl_s` seconds, while the API key whose
/// SHA-256 is `key_hash` exists: sign_token(n.signing_secret(), "tus",
/// {video_id, key_id_of(key_hash)}, expiry) (ops/token.hpp).
std::string tus_token(node& n, const std::string& video_id,
                      const std::string& key_hash, int64_t ttl_s = 24 * 3600);

/// tus 1.0.0 on /upload/: OPTIONS, POST /upload/ (creation), HEAD, PATCH
/// and DELETE /upload/{upload id}; extensions creation, termination and
/// expiration. Creation's Upload-Metadata must carry "token" (tus_token;
/// refused once its key is revoked, and so are the PATCHes of the upload)
/// and may carry "video_id" (the video's integer id or UUID; it must be
/// the token's), "filename" and anything else. Uploads live under
/// <data_dir>/tus/ and survive restarts; the last byte makes the file the
/// video's whole source. Sweeps expired uploads once now. The routes are
/// access::capability in the gate's table: the token, then the upload id,
/// is what lets a request in.
void add_tus(route_table& t, node& n);

/// Parses an Upload-Metadata header: comma-separated "key base64value"
/// pairs, or a bare "key" (its value is then ""); spaces around a pair are
/// allowed. Nothing for a malformed header: an empty pair, a value with a
/// space in it, a value that is not base64, or a key given twice. (In
/// http/tus_metadata.cpp, so that it links without the rest of tus.)
std::optional<std::map<std::string, std::string>>
parse_tus_metadata(const std::string& h);

} // namespace reel::http
