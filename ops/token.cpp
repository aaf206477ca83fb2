#include "ops/token.hpp"

#include "ops/util.hpp"

namespace reel {

namespace {

std::string mac_of(std::string_view secret, std::string_view body) {
  return hex(hmac_sha256(secret, body)).substr(0, 32);
}

} // namespace

std::string sign_token(std::string_view secret, const std::string& kind,
                       const std::vector<std::string>& fields,
                       int64_t expires_ms) {
  std::string body = kind;
  for (auto& f : fields)
    body += "." + f;
  body += "." + std::to_string(expires_ms);
  return body + "." + mac_of(secret, body);
}

caf::expected<std::vector<std::string>>
verify_token(std::string_view secret, const std::string& kind,
             const std::string& token, int64_t now_ms) {
  auto invalid = make_error(ec::unauthorized, "invalid token");
  if (token.size() > 1024)
    return invalid;
  auto last = token.rfind('.');
  if (last == std::string::npos)
    return invalid;
  auto body = token.substr(0, last);
  if (!equal_secrets(token.substr(last + 1), mac_of(secret, body)))
    return invalid;
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    auto dot = body.find('.', start);
    parts.push_back(body.substr(start, dot - start));
    if (dot == std::string::npos)
      break;
    start = dot + 1;
  }
  if (parts.size() < 2 || parts.front() != kind)
    return invalid;
  int64_t expires = 0;
  try {
    expires = std::stoll(parts.back());
  } catch (const std::exception&) {
    return invalid;
  }
  if (now_ms >= expires)
    return make_error(ec::unauthorized, "the token has expired");
  return std::vector<std::string>(parts.begin() + 1, parts.end() - 1);
}

} // namespace reel
