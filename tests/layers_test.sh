#!/usr/bin/env bash
# The layering of docs/layers.md, checked: every .hpp/.cpp under the
# repository's top-level folders against the rules in LAYERS, with the
# known violations of LAYERS.allow (which can only shrink).
#
#   tests/layers_test.sh [BUILD_DIR]   self-test, then the repository
#   tests/layers_test.sh --check ROOT  only the tree at ROOT
#
# Each forbidden include is reported as "file:line: folder may not include
# X"; a line of LAYERS.allow that matches nothing any more is reported too.
# Exit status: 0 clean, 1 violations, 2 a malformed LAYERS or LAYERS.allow.
set -uo pipefail

# -- the check ----------------------------------------------------------------

# check ROOT: prints every problem, answers 0 when there is none.
check() {
  local root=$1
  local rules=$root/LAYERS allow=$root/LAYERS.allow
  if [[ ! -f $rules ]]; then
    echo "$rules: missing"
    return 2
  fi

  # LAYERS: "layer FOLDER: FOLDERS" and "header NAME: FILES".
  local -A may=()          # folder -> " allowed folders " (or " * ")
  local -a header_names=() header_files=()
  local n=0 line kind key rest
  local -a words
  while IFS= read -r line || [[ -n $line ]]; do
    n=$((n + 1))
    line=${line%%#*}
    [[ $line =~ ^[[:space:]]*$ ]] && continue
    if [[ ! $line =~ ^[[:space:]]*(layer|header)[[:space:]]+([^[:space:]:]+):(.*)$ ]]; then
      echo "LAYERS:$n: not \"layer FOLDER: FOLDERS\" or \"header NAME: FILES\""
      return 2
    fi
    kind=${BASH_REMATCH[1]} key=${BASH_REMATCH[2]} rest=${BASH_REMATCH[3]}
    read -ra words <<<"$rest"
    rest=${words[*]} # the words, single spaces, no glob expanded
    if [[ $kind == layer ]]; then
      if [[ -n ${may[$key]+x} ]]; then
        echo "LAYERS:$n: a second line for $key"
        return 2
      fi
      may[$key]=" $rest "
    else
      if [[ -z $rest ]]; then
        echo "LAYERS:$n: header $key names no files"
        return 2
      fi
      header_names+=("$key")
      header_files+=("$rest")
    fi
  done <"$rules"

  # LAYERS.allow: "FILE -> INCLUDE  # why", one known violation a line.
  local -A allowed=() allowed_at=() seen=()
  n=0
  if [[ -f $allow ]]; then
    while IFS= read -r line || [[ -n $line ]]; do
      n=$((n + 1))
      [[ $line =~ ^[[:space:]]*(#.*)?$ ]] && continue
      if [[ ! $line =~ ^([^[:space:]]+)[[:space:]]+-\>[[:space:]]+([^[:space:]]+)[[:space:]]+#[[:space:]]*[^[:space:]] ]]; then
        echo "LAYERS.allow:$n: not \"FILE -> INCLUDE  # why\" (a reason is required)"
        return 2
      fi
      key="${BASH_REMATCH[1]} -> ${BASH_REMATCH[2]}"
      if [[ -n ${allowed[$key]+x} ]]; then
        echo "LAYERS.allow:$n: $key is listed twice"
        return 2
      fi
      allowed[$key]=1
      allowed_at[$key]=$n
    done <"$allow"
  fi

  # The sources: every .hpp/.cpp (and .h/.cc) in a top-level folder, but
  # not in build directories, node_modules or hidden folders.
  local -a files=()
  local dir top
  for dir in "$root"/*/; do
    dir=${dir%/}
    top=${dir##*/}
    [[ $top == build* || $top == node_modules || $top == data ]] && continue
    [[ -f $dir/CMakeCache.txt ]] && continue # a build directory by any name
    while IFS= read -r -d '' line; do
      files+=("${line#"$root"/}")
    done < <(find "$dir" \( -name node_modules -o -name '.*' \) -prune -o \
                  -type f \( -name '*.hpp' -o -name '*.cpp' -o -name '*.h' \
                             -o -name '*.cc' \) -print0 | sort -z)
  done

  local bad=0 file folder target inc_line delim i glob ok what
  for file in "${files[@]}"; do
    folder=${file%%/*}
    if [[ -z ${may[$folder]+x} ]]; then
      echo "$file: folder $folder has no layer line in LAYERS"
      bad=1
      continue
    fi
    while IFS= read -r line; do
      inc_line=${line%%:*}
      line=${line#*:}
      [[ $line =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*([\<\"])([^\>\"]+)[\>\"] ]] || continue
      delim=${BASH_REMATCH[1]} target=${BASH_REMATCH[2]}
      what=
      # Third-party headers, by name, however they are written.
      for i in "${!header_names[@]}"; do
        [[ $target == "${header_names[$i]}"* ]] || continue
        ok=0
        read -ra words <<<"${header_files[$i]}"
        for glob in "${words[@]}"; do
          # shellcheck disable=SC2053 # the pattern is meant to match
          [[ $file == $glob ]] && ok=1
        done
        ((ok)) || what="may not include <$target> (only ${header_files[$i]})"
      done
      # reel's own headers: "folder/...".
      if [[ -z $what && $delim == '"' && ${may[$folder]} != " * " ]]; then
        if [[ $target != */* ]]; then
          what="may not include \"$target\" (write includes from the repository root: \"folder/...\")"
        elif [[ ${target%%/*} != "$folder" && ${may[$folder]} != *" ${target%%/*} "* ]]; then
          what="may not include $target"
        fi
      fi
      [[ -z $what ]] && continue
      key="$file -> $target"
      if [[ -n ${allowed[$key]+x} ]]; then
        seen[$key]=1
        continue
      fi
      echo "$file:$inc_line: $folder $what"
      bad=1
    done < <(grep -nE '^[[:space:]]*#[[:space:]]*include' "$root/$file")
  done

  for key in "${!allowed[@]}"; do
    if [[ -z ${seen[$key]+x} ]]; then
      echo "LAYERS.allow:${allowed_at[$key]}: $key no longer occurs (or is allowed now): delete the line"
      bad=1
    fi
  done
  return $bad
}

if [[ ${1:-} == --check ]]; then
  check "${2:?usage: layers_test.sh --check ROOT}"
  exit
fi

# -- the self-test ---------------------------------------------------------

repo=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

# expect STATUS OUTPUT-LINE... : runs the check over $tmp/t, compares.
expect() {
  local want_status=$1
  shift
  local want got status line
  want=$(printf '%s\n' "$@" | sort)
  got=$(check "$tmp/t" | sort) # pipefail: the check's status
  status=$?
  if [[ $status != "$want_status" || $got != "$want" ]]; then
    echo "self-test '$case_name' FAILED: status $status (wanted $want_status)"
    echo "  got:"
    while IFS= read -r line; do echo "    $line"; done <<<"$got"
    echo "  wanted:"
    while IFS= read -r line; do echo "    $line"; done <<<"$want"
    failures=$((failures + 1))
  else
    echo "self-test '$case_name': ok"
  fi
}

# A small tree under the repository's own LAYERS.
fresh() {
  case_name=$1
  rm -rf "$tmp/t"
  mkdir -p "$tmp/t/ops" "$tmp/t/codec" "$tmp/t/storage" "$tmp/t/actors" \
           "$tmp/t/http" "$tmp/t/tests"
  cp "$repo/LAYERS" "$tmp/t/LAYERS"
  printf '#pragma once\n' >"$tmp/t/ops/error.hpp"
  printf '#include "ops/error.hpp"\n#include <vector>\n' >"$tmp/t/codec/codec.hpp"
  printf '#include "codec/codec.hpp"\n#include "ops/error.hpp"\n' \
    >"$tmp/t/actors/node.hpp"
  printf '#include "actors/node.hpp"\n#include <httplib.h>\n' \
    >"$tmp/t/http/media.cpp"
  printf '#include "http/media.hpp"\n#include <rocksdb/db.h>\n' \
    >"$tmp/t/tests/anything_test.cpp"
}

fresh "a clean tree passes"
expect 0

fresh "a forbidden folder fails"
printf '// the packager\n#include "codec/codec.hpp"\n#include "actors/node.hpp"\n' \
  >"$tmp/t/codec/package.cpp"
expect 1 "codec/package.cpp:3: codec may not include actors/node.hpp"

fresh "http reaching storage fails"
printf '#include "actors/node.hpp"\n  #  include "storage/db.hpp"\n' \
  >>"$tmp/t/http/media.cpp"
expect 1 "http/media.cpp:4: http may not include storage/db.hpp"

fresh "a third-party header outside its folder fails"
printf '#include <rocksdb/db.h>\nextern "C" {\n#include <libavutil/log.h>\n}\n' \
  >"$tmp/t/actors/node.cpp"
expect 1 \
  "actors/node.cpp:1: actors may not include <rocksdb/db.h> (only storage/* tests/* bench/*)" \
  "actors/node.cpp:3: actors may not include <libavutil/log.h> (only codec/* tests/* bench/*)"

fresh "caf/all.hpp in a header fails, in an actor's .cpp passes"
printf '#include <caf/all.hpp>\n' >"$tmp/t/actors/video.cpp"
printf '#pragma once\n#include <caf/all.hpp>\n' >"$tmp/t/actors/video.hpp"
expect 1 \
  "actors/video.hpp:2: actors may not include <caf/all.hpp> (only actors/*.cpp cmd/*.cpp tests/* bench/*)"

fresh "an include without its folder fails"
printf '#include "error.hpp"\n' >"$tmp/t/ops/log.cpp"
expect 1 \
  "ops/log.cpp:1: ops may not include \"error.hpp\" (write includes from the repository root: \"folder/...\")"

fresh "a folder without a layer line fails"
mkdir -p "$tmp/t/extra"
printf '#include "ops/error.hpp"\n' >"$tmp/t/extra/x.cpp"
expect 1 "extra/x.cpp: folder extra has no layer line in LAYERS"

fresh "a listed violation passes"
printf '#include "codec/codec.hpp"\n' >"$tmp/t/storage/records.hpp"
printf '# why\nstorage/records.hpp -> codec/codec.hpp  # until model/\n' \
  >"$tmp/t/LAYERS.allow"
expect 0

fresh "a listed violation that no longer occurs fails"
printf '#include "ops/error.hpp"\n' >"$tmp/t/storage/records.hpp"
printf '# why\nstorage/records.hpp -> codec/codec.hpp  # until model/\n' \
  >"$tmp/t/LAYERS.allow"
expect 1 \
  "LAYERS.allow:2: storage/records.hpp -> codec/codec.hpp no longer occurs (or is allowed now): delete the line"

fresh "a listed line without a reason is refused"
printf '#include "codec/codec.hpp"\n' >"$tmp/t/storage/records.hpp"
printf 'storage/records.hpp -> codec/codec.hpp\n' >"$tmp/t/LAYERS.allow"
expect 2 \
  "LAYERS.allow:1: not \"FILE -> INCLUDE  # why\" (a reason is required)"

fresh "build directories are not sources"
mkdir -p "$tmp/t/build/CMakeFiles" "$tmp/t/out"
printf '#include "actors/node.hpp"\n' >"$tmp/t/build/CMakeFiles/x.cpp"
touch "$tmp/t/out/CMakeCache.txt"
printf '#include "actors/node.hpp"\n' >"$tmp/t/out/y.cpp"
expect 0

if ((failures)); then
  echo "$failures self-test(s) failed: the check cannot be trusted"
  exit 1
fi

# -- the repository ---------------------------------------------------------

echo "checking $repo against LAYERS and LAYERS.allow"
if check "$repo"; then
  echo "layers: ok"
else
  status=$?
  echo "layers: see docs/layers.md; fix the include, or change LAYERS with" \
       "a reason (a known violation goes in LAYERS.allow, which only shrinks)"
  exit "$status"
fi
