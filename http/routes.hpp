#pragma once

// Each file of http/ adds one dialect's or resource's routes.

#include "http/gate.hpp"

namespace reel::http {

/// The client Uploads API: /api/client/v1/uploads.
void add_uploads_api(route_table& t, node& n);

/// The native API: /v1/videos, /v1/folders, /v1/keys, /v1/admin/status,
/// /healthz, /metrics.
void add_native_api(route_table& t, node& n);

/// The player page /embed/<id> and the player script it loads.
void add_embed(route_table& t, node& n);

/// Media files: /media/<id>/<path> with Range support; a private video's
/// as /media/<id>/token/<playback token>/<path>.
void add_media(route_table& t, node& n);

/// Answers the media file `rel` of video `v` ("master.m3u8",
/// "source/<file name>", "thumbnail.jpg", ...) as /media/<id>/<rel> does:
/// refused 403 when the video is restricted and `token` does not open it,
/// its type, Cache-Control, Accept-Ranges, a single range 206, 416 past
/// the end, streamed from the file; 404 in text when there is none.
void serve_media(call& c, const video_record& v, const std::string& token,
                 std::string rel);

/// The api.video dialect: /auth, /videos, /upload, /upload-tokens, /tags,
/// /webhooks.
void add_apivideo_api(route_table& t, node& n);

/// The Gcore Streaming dialect: /streaming/videos, /streaming/directories.
void add_gcore_api(route_table& t, node& n);

/// The Flare dialect: /api/video/..., /api/videos, presigned uploads and
/// the publicUrl of an uploaded file, /media/flare/<tenant>/<id>/<source>/
/// <file name> (added before add_media: /media/<id>/... would take it).
void add_flare_api(route_table& t, node& n);

/// Whether playing video `v` needs a playback token: it is private
/// (api.video) or has a password (Flare).
bool restricted(const video_record& v);

/// The path segment "token/<t>/" a restricted video's media URLs carry
/// when `who` is shown them: a playback token signed for the video, valid
/// a day, naming the key of `who` (key_id_of) so that it dies with that
/// key; "" for another video, or a caller without a key.
std::string playback_segment(node& n, const video_record& v,
                             const principal& who);

/// The playback token the password of a protected video gives (its page's
/// form): bound to a digest of the stored password hash, so that changing
/// or removing the password ends it.
std::string password_playback_token(node& n, const video_record& v);

/// Why `token` does not open video `v` ("" when it does, or when the video
/// is public): not a playback token of this video, expired, its key
/// revoked, or the password it was given for changed.
std::string playback_denied(node& n, const video_record& v,
                            const std::string& token);

} // namespace reel::http
