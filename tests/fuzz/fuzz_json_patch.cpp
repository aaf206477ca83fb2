// A client's change to a video: the input is the JSON a dialect hands to
// storage's apply_patch (parsed with nlohmann::json::parse, as the video
// actors do). Checks that a refused patch changes nothing, that an
// accepted one changes only the title, the folder and video_info, that
// applying it again changes nothing more (merge patches are idempotent),
// and that the result survives the store's encoding (encode, decode,
// encode again).

#include "tests/fuzz/fuzz.hpp"

#include "storage/records.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

using namespace reel;

namespace {

video_record sample() {
  video_record v;
  v.id = "0b7e5c1e-2d4f-4a8b-9c3d-5e6f7a8b9c0d";
  v.number = 123456789; // every record made since ids are random has one
  v.tenant = "default";
  v.folder = "root/a";
  v.title = "clip.mp4";
  v.filename = "clip.mp4";
  v.state = states::ready;
  v.created_ms = 1700000000000;
  v.info.description = "a description";
  v.info.tags = {"a", "b"};
  v.info.metadata = {meta_entry{"k", "v"}};
  v.info.poster_at_s = 1.5;
  v.info.password_hash = "salt$hash";
  return v;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto patch = nlohmann::json::parse(data, data + size, nullptr, false);
  if (patch.is_discarded())
    return 0;
  auto v = sample();
  auto before = encode(v);
  if (apply_patch(v, patch)) {
    FUZZ_CHECK(encode(v) == before, "a refused patch changes nothing");
    return 0;
  }
  auto after = encode(v);
  auto only = sample();
  only.title = v.title;
  only.folder = v.folder;
  only.info = v.info;
  FUZZ_CHECK(encode(only) == after,
             "only the title, the folder and video_info change");
  FUZZ_CHECK(v.folder == sample().folder || valid_folder_path(v.folder),
             "a folder patched in is a folder path");
  auto twice = v;
  FUZZ_CHECK(!apply_patch(twice, patch) && encode(twice) == after,
             "applying the same patch again changes nothing");
  video_record back;
  FUZZ_CHECK(!decode(after, back), "the patched record decodes");
  FUZZ_CHECK(encode(back) == after, "the patched record round-trips");
  return 0;
}
