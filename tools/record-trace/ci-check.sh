#!/usr/bin/env bash
# CI step (.ci/run): re-record the NVMe workload from the real Debian kernel (tools/record-trace/record.sh, which
# installs qemu-system-x86 and busybox-static when run as root) and check the new trace with 'dmacheck trace'. It
# must hold map and unmap events of the NVMe device and give zero findings, like the committed fixture. Outside CI a
# recording that cannot run (no root, no network) is reported as skipped; under CI (CI=true) it fails.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

if ! tools/record-trace/record.sh nvme "$out/nvme.trace"; then
  if [ "${CI:-}" = "true" ]; then
    echo "record-trace: FAILED: the kernel trace could not be recorded"
    exit 1
  fi
  echo "record-trace: SKIPPED: the kernel trace could not be recorded here (not under CI)"
  exit 0
fi
cat "$out/nvme.trace.meta"

dotnet run --project src/DmaCheck.Cli -- trace "$out/nvme.trace" > "$out/report.txt"
code=$?
cat "$out/report.txt"
fail=0
[ "$code" -eq 0 ] || { echo "record-trace: FAILED: dmacheck trace exited $code (expected 0: a correct driver)"; fail=1; }
grep -q '^0 finding(s)$' "$out/report.txt" || { echo "record-trace: FAILED: findings on a correct driver"; fail=1; }
grep -q 'dma_map_page [0-9]' "$out/report.txt" || { echo "record-trace: FAILED: no dma_map_page events"; fail=1; }
grep -q 'dma_unmap_sg [0-9]' "$out/report.txt" || { echo "record-trace: FAILED: no dma_unmap_sg events"; fail=1; }
[ "$fail" -eq 0 ] && echo "record-trace: ok"
exit $fail
