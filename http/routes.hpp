#pragma once

// Each file of http/ adds one dialect's or resource's routes.

#include "http/common.hpp"

namespace reel::http {

/// The client Uploads API: /api/client/v1/uploads.
void add_uploads_api(router& r, node& n);

/// The native API: /v1/videos, /v1/folders, /v1/keys, /v1/admin/status,
/// /healthz, /metrics.
void add_native_api(router& r, node& n);

/// The player page /embed/<id> and the player script it loads.
void add_embed(router& r, node& n);

/// Media files: /media/<id>/<path> with Range support.
void add_media(router& r, node& n);

} // namespace reel::http
