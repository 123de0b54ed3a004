#!/usr/bin/env bash
# Records a real dma:* / swiotlb:* ftrace from a real Debian kernel booted in QEMU (TCG, no KVM).
#
#   tools/record-trace/record.sh WORKLOAD OUT.trace
#
# WORKLOAD is one of:
#   nvme              NVMe read and write with dd (dma-direct, coherent x86_64)
#   nvme-swiotlb      the same with swiotlb=force: every streaming map bounces (swiotlb_bounced events)
#   nvme-iommu        -machine q35 -device intel-iommu, intel_iommu=on: IOVAs differ from physical addresses
#   virtio-blk-iommu  virtio-blk-pci with iommu_platform=on (VIRTIO_F_ACCESS_PLATFORM, so virtio uses the DMA API)
#   arm64-virtio-blk              arm64 (qemu-system-aarch64 -M virt -cpu cortex-a57): virtio-blk over virtio-mmio
#                                 (modern transport, iommu_platform=on), coherent as QEMU's DT says
#   arm64-virtio-blk-noncoherent  the same with 'dma-coherent;' deleted from every virtio_mmio node of QEMU's DT
#                                 (dumped with dumpdtb, edited with dtc): the kernel takes its non-coherent paths
#
# Writes OUT.trace (the text of /sys/kernel/tracing/trace, events enabled from boot with trace_event=) and
# OUT.trace.meta (kernel package, QEMU version and command line). Installs what it needs from Debian when run as
# root (qemu-system-x86 or qemu-system-arm, busybox-static, xz-utils, cpio, device-tree-compiler); the kernel package
# (and for arm64 busybox-static:arm64, after 'dpkg --add-architecture arm64') is fetched with 'apt-get download' and
# unpacked into the cache directory, never installed. Environment:
#   KERNEL_PKG   the kernel package (default: the newest linux-image-6.12.*-cloud-amd64-unsigned apt serves, or for
#                arm64 the newest linux-image-6.12.*-arm64-unsigned, whose virtio_mmio and virtio_blk are modules)
#   CACHE_DIR    where the kernel and initramfs are kept (default: ${XDG_CACHE_HOME:-$HOME/.cache}/dmacheck-record)
#   QEMU_TIMEOUT seconds before the boot is abandoned (default 120)
set -euo pipefail

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -eq 2 ] || usage
workload=$1
out=$2
case "$workload" in nvme|nvme-swiotlb|nvme-iommu|virtio-blk-iommu) arch=amd64 ;; arm64-virtio-blk|arm64-virtio-blk-noncoherent) arch=arm64 ;;
  *) echo "record.sh: unknown workload '$workload'" >&2; usage ;; esac

cache=${CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/dmacheck-record}
mkdir -p "$cache"

need_install=()
if [ "$arch" = amd64 ]; then
  command -v qemu-system-x86_64 >/dev/null 2>&1 || need_install+=(qemu-system-x86)
  dpkg -s busybox-static >/dev/null 2>&1 || need_install+=(busybox-static)
else
  command -v qemu-system-aarch64 >/dev/null 2>&1 || need_install+=(qemu-system-arm)
  command -v dtc >/dev/null 2>&1 || need_install+=(device-tree-compiler)
fi
command -v xz >/dev/null 2>&1 || need_install+=(xz-utils)
command -v cpio >/dev/null 2>&1 || need_install+=(cpio)
if [ ${#need_install[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "record.sh: missing ${need_install[*]}; run as root or install them" >&2
    exit 1
  fi
  echo "record.sh: installing ${need_install[*]}" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_install[@]}" >/dev/null
fi

if [ "$arch" = arm64 ] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
  [ "$(id -u)" -eq 0 ] || { echo "record.sh: arm64 packages need 'dpkg --add-architecture arm64' (as root)" >&2; exit 1; }
  dpkg --add-architecture arm64 && apt-get update -qq >/dev/null
fi

# Fetches a package with 'apt-get download' and unpacks it under the cache (once).
unpack() { # PKG[:ARCH] DIR
  if [ ! -d "$2/x" ]; then
    rm -rf "$2.tmp" && mkdir -p "$2.tmp"
    (cd "$2.tmp" && apt-get download "$1" >/dev/null 2>&1) || { echo "record.sh: cannot download $1" >&2; exit 1; }
    dpkg-deb -x "$2.tmp"/*.deb "$2.tmp/x"
    mkdir -p "$2" && rm -rf "$2/x" && mv "$2.tmp/x" "$2/x" && rm -rf "$2.tmp"
  fi
}

# The kernel: the newest 6.12 image of the flavour apt serves, unless KERNEL_PKG names one.
if [ "$arch" = amd64 ]; then flavour='cloud-amd64'; else flavour='arm64'; fi
pkg=${KERNEL_PKG:-$(apt-cache search --names-only "^linux-image-6\.12\.[0-9]+\+deb[0-9]+-$flavour-unsigned\$" \
  | awk '{print $1}' | sort -V | tail -n 1)}
[ -n "$pkg" ] || { echo "record.sh: apt serves no linux-image-6.12.*-$flavour-unsigned (run apt-get update)" >&2; exit 1; }
pkgver=$(apt-cache policy "$pkg:$arch" | awk '/Candidate:/ {print $2}')
unpack "$pkg:$arch" "$cache/$pkg-$arch"
kdir="$cache/$pkg-$arch/x"
if [ "$arch" = arm64 ]; then
  unpack busybox-static:arm64 "$cache/busybox-static-arm64"
  busybox_bin="$cache/busybox-static-arm64/x/bin/busybox"
else
  busybox_bin=/bin/busybox
fi
vmlinuz=$(ls "$kdir"/boot/vmlinuz-* | head -n 1)
krel=${vmlinuz##*/vmlinuz-}

# The initramfs: static busybox and an /init that runs the workload and prints the trace between markers.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/root"
mkdir -p "$root"/{bin,dev,proc,sys,tmp,mod}
cp "$busybox_bin" "$root/bin/busybox"
for m in virtio_mmio virtio_blk; do
  f=$(find "$kdir/lib/modules/$krel" -name "$m.ko.xz" | head -n 1)
  [ -n "$f" ] && xz -dc "$f" > "$root/mod/$m.ko"
done
cat > "$root/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tracefs tracefs /sys/kernel/tracing
WORKLOAD=$(sed -n 's/.*dmacheck.workload=\([^ ]*\).*/\1/p' /proc/cmdline)
if [ "$WORKLOAD" != "${WORKLOAD#arm64-}" ]; then
  insmod /mod/virtio_mmio.ko
  insmod /mod/virtio_blk.ko
  DISK=/dev/vda
elif [ "$WORKLOAD" = virtio-blk-iommu ]; then
  insmod /mod/virtio_blk.ko
  DISK=/dev/vda
else
  DISK=/dev/nvme0n1
fi
i=0
while [ ! -b "$DISK" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
if [ -b "$DISK" ]; then
  # Write a pattern, read it back through the page cache and with O_DIRECT (one large and several small requests).
  dd if=/dev/urandom of=/tmp/pattern bs=4096 count=64 2>/dev/null
  dd if=/tmp/pattern of="$DISK" bs=65536 count=4 oflag=direct 2>/dev/null
  dd if="$DISK" of=/dev/null bs=4096 count=32 iflag=direct 2>/dev/null
  dd if="$DISK" of=/dev/null bs=131072 count=2 iflag=direct 2>/dev/null
  dd if=/tmp/pattern of="$DISK" bs=4096 count=16 seek=128 conv=fsync 2>/dev/null
  sync
  echo "dmacheck: workload done on $DISK"
else
  echo "dmacheck: no $DISK"
fi
echo 0 > /sys/kernel/tracing/tracing_on
echo "=== DMACHECK TRACE BEGIN ==="
cat /sys/kernel/tracing/trace
echo "=== DMACHECK TRACE END ==="
poweroff -f
EOF
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$work/initrd.gz"

truncate -s 64M "$work/disk.img"
dtchange="none (x86_64 has no DT)"
if [ "$arch" = amd64 ]; then
  machine=(-machine pc)
  append="console=ttyS0 quiet panic=-1 trace_event=dma:*,swiotlb:* trace_buf_size=16M dmacheck.workload=$workload"
  devices=(-drive "file=$work/disk.img,if=none,id=d0,format=raw")
  case "$workload" in
    nvme) devices+=(-device nvme,serial=dmacheck,drive=d0) ;;
    nvme-swiotlb) devices+=(-device nvme,serial=dmacheck,drive=d0); append="$append swiotlb=force" ;;
    nvme-iommu)
      machine=(-machine q35)
      devices=(-device intel-iommu "${devices[@]}" -device nvme,serial=dmacheck,drive=d0)
      append="$append intel_iommu=on" ;;
    virtio-blk-iommu)
      devices+=(-device virtio-blk-pci,drive=d0,disable-legacy=on,iommu_platform=on) ;;
  esac
  cmd=(qemu-system-x86_64 -accel tcg -cpu max -m 512 -smp 1 "${machine[@]}" -nographic -no-reboot
    -kernel "$vmlinuz" -initrd "$work/initrd.gz" -append "$append" "${devices[@]}")
else
  append="console=ttyAMA0 quiet panic=-1 trace_event=dma:*,swiotlb:* trace_buf_size=16M dmacheck.workload=$workload"
  base=(qemu-system-aarch64 -M virt -cpu cortex-a57 -m 512 -smp 1 -nographic -no-reboot
    -global virtio-mmio.force-legacy=false -drive "file=$work/disk.img,if=none,id=d0,format=raw"
    -device virtio-blk-device,drive=d0,iommu_platform=on)
  cmd=("${base[@]}" -kernel "$vmlinuz" -initrd "$work/initrd.gz" -append "$append")
  dtchange="none (QEMU's own DT: virtio_mmio nodes are dma-coherent)"
  if [ "$workload" = arm64-virtio-blk-noncoherent ]; then
    # QEMU's DT for this machine and these devices, with 'dma-coherent;' deleted from every virtio_mmio node (only the
    # one holding the disk has a device behind it).
    qemu_dump=("${base[@]}")
    qemu_dump[2]="virt,dumpdtb=$work/virt.dtb"
    "${qemu_dump[@]}" >/dev/null 2>&1 || true
    dtc -q -I dtb -O dts "$work/virt.dtb" -o "$work/virt.dts"
    awk '/^[ \t]*virtio_mmio@[0-9a-f]+ \{/ {inmmio=1} /^[ \t]*\};/ {inmmio=0} !(inmmio && $1 == "dma-coherent;") {print}' \
      "$work/virt.dts" > "$work/virt-noncoherent.dts"
    removed=$(( $(grep -c 'dma-coherent;' "$work/virt.dts") - $(grep -c 'dma-coherent;' "$work/virt-noncoherent.dts") ))
    dtc -q -I dts -O dtb "$work/virt-noncoherent.dts" -o "$work/virt-noncoherent.dtb"
    cmd+=(-dtb "$work/virt-noncoherent.dtb")
    dtchange="QEMU's DT (-M virt,dumpdtb=virt.dtb with the same devices, decompiled with dtc) with 'dma-coherent;' deleted from all $removed virtio_mmio nodes, recompiled and passed with -dtb"
  fi
fi
echo "record.sh: booting $pkg ($workload)" >&2
start=$(date +%s)
timeout "${QEMU_TIMEOUT:-120}" "${cmd[@]}" < /dev/null > "$work/console.log" 2>&1 || true
elapsed=$(( $(date +%s) - start ))
tr -d '\r' < "$work/console.log" | sed -n '/^=== DMACHECK TRACE BEGIN ===$/,/^=== DMACHECK TRACE END ===$/p' \
  | sed '1d;$d' > "$work/trace"
if ! grep -q ': dma_' "$work/trace"; then
  echo "record.sh: the boot produced no dma_* events; console log follows" >&2
  tail -n 40 "$work/console.log" >&2
  exit 1
fi
mkdir -p "$(dirname "$out")"
cp "$work/trace" "$out"
qemuver=$("${cmd[0]}" --version | head -n 1)
# The command line as recorded, with the temporary paths made generic.
printable=$(printf '%q ' "${cmd[@]}" | sed "s#$work/#WORK/#g; s#$vmlinuz#/boot/vmlinuz-$krel#")
{
  echo "workload: $workload"
  echo "kernel package: $pkg $pkgver (Debian)"
  echo "kernel release: $krel"
  echo "qemu: $qemuver"
  echo "busybox: busybox-static:$arch $(apt-cache policy "busybox-static:$arch" | awk '/Candidate:/ {print $2}')"
  echo "device tree change: $dtchange"
  echo "qemu command line: $printable"
  echo "recorded: $(date -u +%Y-%m-%dT%H:%M:%SZ), boot and workload took ${elapsed} s"
  echo "lines: $(wc -l < "$out")"
} > "$out.meta"
echo "record.sh: wrote $out ($(wc -l < "$out") lines, ${elapsed} s)" >&2
