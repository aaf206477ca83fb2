// Probing an uploaded source: the input is the file, written to a
// temporary file and handed to codec::probe (reel's own ISO BMFF box walk,
// then libavformat reading every packet and libavcodec decoding the first
// pictures). libFuzzer's -timeout bounds the time per input. A probe that
// succeeds must describe a usable video: a video stream with a picture
// size, at least one packet, the file's size, keyframes ascending and
// unique, and times that are numbers.

#include "tests/fuzz/fuzz.hpp"

#include "codec/codec.hpp"

extern "C" {
#include <libavutil/log.h>
}

#include <unistd.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace fs = std::filesystem;

namespace {

std::string path;

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  reel::codec::set_libav_logging(false);
  av_log_set_level(AV_LOG_QUIET); // broken inputs are the point here
  // /dev/shm when there is one: no disk writes per input.
  fs::path dir = fs::is_directory("/dev/shm") ? fs::path{"/dev/shm"}
                                              : fs::temp_directory_path();
  path = (dir / ("reel-fuzz-probe-" + std::to_string(::getpid()))).string();
  std::atexit([] { ::unlink(path.c_str()); });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto* f = std::fopen(path.c_str(), "wb");
  FUZZ_CHECK(f != nullptr, "the temporary file opens");
  if (size > 0)
    FUZZ_CHECK(std::fwrite(data, 1, size, f) == size, "the input is written");
  std::fclose(f);
  auto r = reel::codec::probe(path);
  if (!r)
    return 0;
  FUZZ_CHECK(r->video_stream >= 0, "a video stream");
  FUZZ_CHECK(r->width > 0 && r->height > 0, "a picture size");
  FUZZ_CHECK(r->frame_count > 0, "video packets");
  FUZZ_CHECK(r->size_bytes == static_cast<int64_t>(size), "the file's size");
  FUZZ_CHECK(r->rotation % 90 == 0 && r->rotation >= 0 && r->rotation < 360,
             "rotation 0, 90, 180 or 270");
  for (size_t i = 1; i < r->keyframes.size(); ++i)
    FUZZ_CHECK(r->keyframes[i - 1] < r->keyframes[i],
               "keyframes ascending and unique");
  FUZZ_CHECK(r->start_pts <= r->end_pts, "start before end");
  FUZZ_CHECK(std::isfinite(r->duration_s) && std::isfinite(r->fps),
             "times are numbers");
  return 0;
}
