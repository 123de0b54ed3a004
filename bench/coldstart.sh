#!/usr/bin/env bash
# Cold-start wall time of `dmacheck check` on both seed directories (issue 5: target < 300 ms).
#
# Builds the CLI as a plain Release build (JIT: what `dotnet run` and `dotnet build` give) and as a Native AOT
# executable, checks that every configuration prints the same JSON report, then times each one as a fresh process, in interleaved
# rounds so that load from other processes falls on every configuration alike. Prints each configuration's median.
#
#   bench/coldstart.sh            plain build and Native AOT (about 2 minutes with the publish)
#   bench/coldstart.sh --all      also the ReadyToRun variants and runtime knobs of docs/performance.md (about 6 minutes)
#   bench/coldstart.sh --runs 15  more rounds (default 9)
#
# Needs clang (any clang-NN will do) and zlib1g-dev for Native AOT: apt-get install clang zlib1g-dev.
# Published outputs go to artifacts/coldstart/ (ignored by git).
set -euo pipefail
cd "$(dirname "$0")/.."

runs=9
all=0
while [ $# -gt 0 ]; do
  case "$1" in
    --all) all=1 ;;
    --runs) runs="$2"; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "coldstart.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 NO_COLOR=1
args=(check scenarios/seeds/qcom-scm scenarios/seeds/vmalloc-cpu-addr)
out=artifacts/coldstart
cli=src/DmaCheck.Cli

case "$(uname -m)" in
  x86_64) rid=linux-x64 ;;
  aarch64) rid=linux-arm64 ;;
  *) echo "coldstart.sh: no runtime identifier known for $(uname -m)" >&2; exit 2 ;;
esac

# The ILCompiler targets call 'clang'; Debian may only have a versioned clang-NN.
aot_linker=()
if ! command -v clang >/dev/null 2>&1; then
  versioned=$(compgen -c clang- | grep -E '^clang-[0-9]+$' | sort -t- -k2 -n | tail -n 1 || true)
  if [ -z "$versioned" ]; then
    echo "coldstart.sh: Native AOT needs clang: apt-get install clang zlib1g-dev" >&2
    exit 2
  fi
  aot_linker=("-p:CppCompilerAndLinker=$versioned")
fi

# Each publish starts from a clean RID-specific intermediate folder: the ReadyToRun step is incremental on its inputs
# only, so a variant with different compiler arguments would otherwise reuse the previous variant's images.
publish() {
  local dest="$1"; shift
  rm -rf "$cli/obj/Release/net10.0/$rid" "$cli/bin/Release/net10.0/$rid" "$dest"
  echo "== publish $dest: $*"
  dotnet publish -c Release -r "$rid" "$@" "$cli" -o "$dest" -v:q -nologo >/dev/null
}

echo "== build (plain Release: JIT)"
dotnet build -c Release "$cli" -v:q -nologo >/dev/null
plain_dll="$cli/bin/Release/net10.0/DmaCheck.Cli.dll"

publish "$out/aot" -p:PublishAot=true "${aot_linker[@]}"

configs=(
  "plain build, dotnet DmaCheck.Cli.dll||dotnet $plain_dll"
  "Native AOT (PublishAot=true)||$out/aot/DmaCheck.Cli"
)

if [ "$all" -eq 1 ]; then
  publish "$out/r2r" --self-contained false -p:PublishReadyToRun=true
  publish "$out/r2r-xmodule" --self-contained false -p:PublishReadyToRun=true \
    '-p:PublishReadyToRunCrossgen2ExtraArgs=--opt-cross-module:*%3B--non-local-generics-module:*'
  publish "$out/r2r-composite" --self-contained true -p:PublishReadyToRun=true -p:PublishReadyToRunComposite=true
  configs+=(
    "plain build, apphost||$cli/bin/Release/net10.0/DmaCheck.Cli"
    "plain build, TieredPGO=0|DOTNET_TieredPGO=0|dotnet $plain_dll"
    "plain build, TC_QuickJitForLoops=0|DOTNET_TC_QuickJitForLoops=0|dotnet $plain_dll"
    "plain build, TieredCompilation=0|DOTNET_TieredCompilation=0|dotnet $plain_dll"
    "R2R||$out/r2r/DmaCheck.Cli"
    "R2R, TieredPGO=0|DOTNET_TieredPGO=0|$out/r2r/DmaCheck.Cli"
    "R2R, TC_QuickJitForLoops=0|DOTNET_TC_QuickJitForLoops=0|$out/r2r/DmaCheck.Cli"
    "R2R, TieredCompilation=0|DOTNET_TieredCompilation=0|$out/r2r/DmaCheck.Cli"
    "R2R cross-module||$out/r2r-xmodule/DmaCheck.Cli"
    "R2R cross-module, TieredPGO=0|DOTNET_TieredPGO=0|$out/r2r-xmodule/DmaCheck.Cli"
    "R2R composite, self-contained||$out/r2r-composite/DmaCheck.Cli"
    "R2R composite, TieredPGO=0|DOTNET_TieredPGO=0|$out/r2r-composite/DmaCheck.Cli"
  )
fi

# A fast binary is only worth having if it says the same thing.
echo "== same JSON report from every configuration"
reference=$(dotnet "$plain_dll" "${args[@]}" --format json || true)
for line in "${configs[@]}"; do
  IFS='|' read -r name envs cmd <<<"$line"
  # shellcheck disable=SC2086
  if [ "$(env $envs $cmd "${args[@]}" --format json || true)" != "$reference" ]; then
    echo "coldstart.sh: '$name' prints a different JSON report from the plain build" >&2
    exit 1
  fi
done

echo "== $runs interleaved rounds of: dmacheck ${args[*]}"
echo "   $(nproc) cores; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A times
for ((round = 0; round < runs; round++)); do
  for line in "${configs[@]}"; do
    IFS='|' read -r name envs cmd <<<"$line"
    start=$(date +%s%N)
    # shellcheck disable=SC2086
    env $envs $cmd "${args[@]}" >/dev/null 2>&1 || true
    end=$(date +%s%N)
    times[$name]+="$(((end - start) / 1000000)) "
  done
done
echo "   load after: $(cut -d' ' -f1-3 /proc/loadavg)"

printf '\n| configuration | median | min–max |\n|---|---:|---:|\n'
for line in "${configs[@]}"; do
  IFS='|' read -r name _ _ <<<"$line"
  sorted=$(printf '%s\n' ${times[$name]} | sort -n)
  median=$(sed -n "$(((runs + 1) / 2))p" <<<"$sorted")
  printf '| %s | %d ms | %d–%d ms |\n' "$name" "$median" "$(head -n 1 <<<"$sorted")" "$(tail -n 1 <<<"$sorted")"
done
