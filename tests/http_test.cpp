#define BOOST_TEST_MODULE http
#include <boost/test/unit_test.hpp>

#include "http/range.hpp"
#include "http/render.hpp"
#include "http/common.hpp"

using namespace reel;
using namespace reel::http;

BOOST_AUTO_TEST_CASE(ranges) {
  auto r = parse_range("bytes=0-99", 1000);
  BOOST_TEST((r.kind == range_kind::single));
  BOOST_TEST(r.first == 0u);
  BOOST_TEST(r.last == 99u);
  r = parse_range("bytes=900-", 1000);
  BOOST_TEST((r.kind == range_kind::single));
  BOOST_TEST(r.last == 999u);
  r = parse_range("bytes=-100", 1000);
  BOOST_TEST((r.kind == range_kind::single));
  BOOST_TEST(r.first == 900u);
  r = parse_range("bytes=-5000", 1000);
  BOOST_TEST(r.first == 0u);
  r = parse_range("bytes=500-5000", 1000);
  BOOST_TEST(r.last == 999u);
  BOOST_TEST((parse_range("bytes=1000-", 1000).kind == range_kind::unsatisfiable));
  BOOST_TEST((parse_range("bytes=5000-6000", 1000).kind == range_kind::unsatisfiable));
  BOOST_TEST((parse_range("bytes=-0", 1000).kind == range_kind::unsatisfiable));
  // Malformed, reversed and multi-range headers are ignored: 200.
  for (auto h : {"", "bytes", "bytes=", "bytes=a-b", "items=0-1", "bytes=9-1",
                 "bytes=0-1,5-9", "bytes=--1", "bytes=99999999999999999999-"})
    BOOST_TEST((parse_range(h, 1000).kind == range_kind::none), h);
}

BOOST_AUTO_TEST_CASE(upload_status_codes) {
  BOOST_TEST(upload_status(states::uploaded).first == 1);
  BOOST_TEST(upload_status(states::probing).first == 1);
  BOOST_TEST(upload_status(states::transcoding).first == 3);
  BOOST_TEST(std::string{upload_status(states::transcoding).second} == "processing");
  BOOST_TEST(upload_status(states::packaging).first == 5);
  BOOST_TEST(std::string{upload_status(states::packaging).second} == "uploading");
  BOOST_TEST(upload_status(states::ready).first == 6);
  BOOST_TEST(std::string{upload_status(states::ready).second} == "completed");
  BOOST_TEST(upload_status(states::failed).first == 7);
}

BOOST_AUTO_TEST_CASE(status_codes_for_errors) {
  BOOST_TEST(status_of(ec::unauthorized) == 401);
  BOOST_TEST(status_of(ec::not_found) == 404);
  BOOST_TEST(status_of(ec::too_large) == 413);
  BOOST_TEST(status_of(ec::invalid_argument) == 400);
  BOOST_TEST(status_of(ec::range_not_satisfiable) == 416);
}

BOOST_AUTO_TEST_CASE(error_bodies_per_dialect) {
  httplib::Response res;
  render_error(dialect::uploads, make_error(ec::invalid_argument,
                                            "The folder field is required."),
               res, "folder");
  BOOST_TEST(res.status == 400);
  auto j = nlohmann::ordered_json::parse(res.body);
  BOOST_TEST(j["message"] == "The folder field is required.");
  BOOST_TEST(j["errors"]["folder"][0] == "The folder field is required.");
  httplib::Response res2;
  render_error(dialect::native, make_error(ec::not_found, "video x not found"),
               res2);
  BOOST_TEST(res2.status == 404);
  auto k = nlohmann::ordered_json::parse(res2.body);
  BOOST_TEST(k["error"]["code"] == "not_found");
  BOOST_TEST(k["error"]["message"] == "video x not found");
}

BOOST_AUTO_TEST_CASE(native_model_shows_failure_and_playback) {
  video_record v;
  v.id = "9c1fa5c4-a8f1-4b2e-9d6e-1c8a0b9e2d7f";
  v.state = states::failed;
  v.failure_reason = "no video stream";
  auto j = native_video(v, "http://h:1");
  BOOST_TEST(j["failure_reason"] == "no video stream");
  BOOST_TEST(j["playback"].is_null());
  v.state = states::ready;
  v.failure_reason.clear();
  v.master = "master.m3u8";
  j = native_video(v, "http://h:1");
  BOOST_TEST(j["failure_reason"].is_null());
  BOOST_TEST(j["playback"]["hls"]
             == "http://h:1/media/9c1fa5c4-a8f1-4b2e-9d6e-1c8a0b9e2d7f/master.m3u8");
  BOOST_TEST(j["progress"]["percent"] == 100);
}
