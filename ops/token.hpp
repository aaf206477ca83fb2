#pragma once

// Signed, expiring tokens that any node holding the same secret can check
// without a lookup: "<kind>.<field>...<expiry ms>.<MAC>", the MAC being
// HMAC-SHA256 (first 128 bits, hex) of everything before it.

#include "ops/error.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace reel {

/// A token of `kind` carrying `fields` (none may contain '.'), valid until
/// `expires_ms`.
std::string sign_token(std::string_view secret, const std::string& kind,
                       const std::vector<std::string>& fields,
                       int64_t expires_ms);

/// The fields of a valid token of `kind`; ec::unauthorized ("expired",
/// "invalid") otherwise. The MAC is compared in constant time.
caf::expected<std::vector<std::string>>
verify_token(std::string_view secret, const std::string& kind,
             const std::string& token, int64_t now_ms);

} // namespace reel
