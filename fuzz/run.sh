#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each; exits non-zero when any target crashes.
#
#   bash fuzz/run.sh SECONDS
#
# Works on the stable toolchain: RUSTC_BOOTSTRAP=1 lets stable rustc take the nightly-only
# flags cargo-fuzz passes (-Zsanitizer=address, coverage instrumentation). See fuzz/README.md.
#
# Environment:
#   FUZZ_TARGET_DIR   cargo target dir for the fuzz build. Default: "$CARGO_TARGET_DIR-fuzz" when
#                     CARGO_TARGET_DIR is set (so the instrumented build never evicts the main
#                     workspace's cache), else fuzz/target.
#   FUZZ_SANITIZER    address (default) or none.
#   CARGO_BUILD_JOBS  as for cargo; set 1 on a shared machine.
set -euo pipefail

usage() { echo "usage: bash fuzz/run.sh SECONDS" >&2; exit 2; }
[[ $# -eq 1 && $1 =~ ^[1-9][0-9]*$ ]] || usage
seconds=$1

fuzz_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$fuzz_dir")
shared="$repo/../shared/corpus"
targets=(message_parse header_views stream_framing transaction_layer user_agent lazy_validation event_bodies presence_bodies dialog_bodies)

if [[ -n ${FUZZ_TARGET_DIR:-} ]]; then
    target_dir=$FUZZ_TARGET_DIR
elif [[ -n ${CARGO_TARGET_DIR:-} ]]; then
    target_dir="${CARGO_TARGET_DIR%/}-fuzz"
else
    target_dir="$fuzz_dir/target"
fi
export CARGO_TARGET_DIR=$target_dir
export RUSTC_BOOTSTRAP=1
sanitizer=${FUZZ_SANITIZER:-address}

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

cd "$repo"
fuzz=(cargo fuzz)
build_flags=(--sanitizer "$sanitizer" --target-dir "$target_dir")

echo "== building ${targets[*]} (sanitizer $sanitizer, target dir $target_dir)"
"${fuzz[@]}" build "${build_flags[@]}"

# Seed corpora, rebuilt each run; fuzz/corpus is git-ignored. The RFC 4475/5118 torture
# messages seed the datagram targets; the RFC 5118 files end lines with bare LF, so a CRLF copy
# (plus the final blank line where the header section is unterminated, as the corpus README
# prescribes) is added too. Missing seeds are skipped.
seeds="$fuzz_dir/corpus/.seeds"
rm -rf "$seeds"
mkdir -p "$seeds/datagram" "$seeds/stream"
if [[ -d $shared ]]; then
    for f in "$shared"/rfc4475/*.dat "$shared"/rfc5118/*; do
        [[ -f $f ]] || continue
        cp "$f" "$seeds/datagram/"
    done
    for f in "$shared"/rfc5118/*; do
        [[ -f $f ]] || continue
        { sed 's/$/\r/' "$f"; grep -q '^$' "$f" || printf '\r\n'; } >"$seeds/datagram/$(basename "$f").crlf"
    done
    # stream_framing input: a count byte (2), two chunk sizes (6, 64), then the stream.
    for f in "$seeds"/datagram/*; do
        { printf '\002\005\077'; cat "$f"; } >"$seeds/stream/$(basename "$f")"
    done
fi

status=0
summary=()
for t in "${targets[@]}"; do
    corpus="$fuzz_dir/corpus/$t"
    mkdir -p "$corpus" "$fuzz_dir/artifacts"
    extra=()
    case $t in
        message_parse | transaction_layer | user_agent | lazy_validation) extra=("$seeds/datagram") ;;
        stream_framing) extra=("$seeds/stream") ;;
    esac
    # Hand-written seeds committed beside the targets (fuzz/seeds/<target>/).
    [[ -d $fuzz_dir/seeds/$t ]] && extra+=("$fuzz_dir/seeds/$t")
    log="$fuzz_dir/artifacts/$t.log"
    echo "== $t: ${seconds}s (log $log)"
    set +e
    "${fuzz[@]}" run "${build_flags[@]}" "$t" "$corpus" "${extra[@]}" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=25 \
        -dict="$fuzz_dir/sip.dict" -print_final_stats=1 >"$log" 2>&1
    rc=$?
    set -e
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    [[ -n $runs ]] || runs=$(sed -n 's/^#\([0-9]\+\).*/\1/p' "$log" | tail -n 1)
    if [[ $rc -eq 0 ]]; then
        result="ok"
    else
        result="CRASHED (exit $rc)"
        status=1
        grep -v "Running \`" "$log" | grep -E "panicked at|^ *(left|right):|assertion|ERROR: |SUMMARY:|Test unit written|^Failing input|artifacts/$t/" |
            head -n 20 | cut -c1-2000 || true
    fi
    line=$(printf '%-18s %10s runs  %s' "$t" "${runs:-?}" "$result")
    echo "$line"
    summary+=("$line")
done

echo "== summary (${seconds}s per target)"
printf '%s\n' "${summary[@]}"
exit $status
