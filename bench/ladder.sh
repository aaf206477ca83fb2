#!/usr/bin/env bash
# The transcode benchmark: a 60 s 1080p30 source that is hard to compress,
# then, in the same run on the same machine,
#   (1) the one ffmpeg command a person would write for the same ladder
#       (same rungs, x264 preset and rates, audio encoded once, HLS fMP4),
#   (2) reel on one node, from upload complete to ready.
# Prints both times, their ratio, reel's time to first playable and the CPU
# each used. Targets: reel <= 1.0x ffmpeg; first playable within 25% of
# reel's total.
#
# Usage: bench/ladder.sh [SECONDS]   (default 60; shorter for a quick look)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
./ops/install-deps.sh
./ops/build.sh >/dev/null

work=$(mktemp -d /tmp/reel-bench-ladder-XXXXXX)
. bench/lib.sh
trap bench_cleanup EXIT

make_source "$seconds" "$work/source.mp4"
rate=$(ffprobe -v error -show_entries format=bit_rate -of csv=p=0 "$work/source.mp4")
echo "source: $(du -m "$work/source.mp4" | cut -f1) MB, $((rate / 1000)) kbit/s"

# The ladder reel makes for a 1080p source (codec/ladder.cpp): the same
# rungs, maxrates and CRF for ffmpeg.
heights=(1080 720 480 360 240)
kbps=(5000 2800 1400 800 400)
n=${#heights[@]}
split="[0:v]split=$n"
for i in $(seq 0 $((n - 1))); do split+="[s$i]"; done
filter="$split"
maps=()
streams=""
for i in $(seq 0 $((n - 1))); do
  filter+=";[s$i]scale=-2:${heights[$i]}[v$i]"
  maps+=(-map "[v$i]" "-c:v:$i" libx264 "-crf:v:$i" 23
         "-maxrate:v:$i" "${kbps[$i]}k" "-bufsize:v:$i" "$((2 * kbps[$i]))k")
  streams+="v:$i,agroup:audio "
done
streams+="a:0,agroup:audio"
mkdir -p "$work/ffmpeg"
echo "(1) ffmpeg, one command for the ladder..."
start=$(date +%s.%N)
( cd "$work/ffmpeg" && /usr/bin/time -f "%U %S" -o ../ffmpeg.cpu \
  timeout 1800 ffmpeg -v error -y -i ../source.mp4 -filter_complex "$filter" \
  "${maps[@]}" -preset veryfast -profile:v high -sc_threshold 0 \
  -force_key_frames "expr:gte(t,n_forced*4)" \
  -map 0:a:0 -c:a aac -b:a 128k -ac 2 -ar 48000 \
  -f hls -hls_time 4 -hls_playlist_type vod -hls_segment_type fmp4 \
  -hls_segment_filename "%v/seg_%05d.m4s" -master_pl_name master.m3u8 \
  -var_stream_map "$streams" "%v/index.m3u8" )
end=$(date +%s.%N)
ffmpeg_s=$(echo "$end - $start" | bc)
read -r fu fs < "$work/ffmpeg.cpu"
ffmpeg_cpu=$(echo "$fu + $fs" | bc)

echo "(2) reel, one node..."
start_node n1 env -- 
ticks=$(getconf CLK_TCK)
cpu_before=$(awk '{print $14 + $15}' "/proc/$NODE_PID/stat")
upload_and_wait "$NODE_URL" "$work/source.mp4" "$work/video.json"
cpu_after=$(awk '{print $14 + $15}' "/proc/$NODE_PID/stat")
read -r reel_s playable_s < <(video_times "$work/video.json")
reel_cpu=$(echo "($cpu_after - $cpu_before) / $ticks" | bc -l)

ratio=$(echo "$reel_s / $ffmpeg_s" | bc -l)
first=$(echo "$playable_s / $reel_s" | bc -l)
printf '\nsource            %d s of 1080p30, %d kbit/s, rungs %s\n' "$seconds" $((rate / 1000)) "${heights[*]}"
printf 'ffmpeg            %7.1f s wall, %7.1f s CPU (%.2f cores)\n' "$ffmpeg_s" "$ffmpeg_cpu" "$(echo "$ffmpeg_cpu / $ffmpeg_s" | bc -l)"
printf 'reel              %7.1f s wall, %7.1f s CPU (%.2f cores)\n' "$reel_s" "$reel_cpu" "$(echo "$reel_cpu / $reel_s" | bc -l)"
printf 'reel / ffmpeg     %7.2fx   (target <= 1.00x) %s\n' "$ratio" "$(verdict "$ratio <= 1.0")"
printf 'first playable    %7.1f s = %.0f%% of reel'"'"'s total (target <= 25%%) %s\n' "$playable_s" "$(echo "$first * 100" | bc -l)" "$(verdict "$first <= 0.25")"
