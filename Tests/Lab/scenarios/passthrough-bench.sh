#!/bin/sh
# lab-description: time from the command to L2's init, svmm passthrough <e1000e> vs QEMU -device vfio-pci in the same L1, and both VMMs' DMA map calls (Benchmarks/run passthrough-start)
# lab-machine: standard
# lab-kind: bench
# lab-needs: l2
# lab-timeout: 900
# lab-files: Tests/Lab/scenarios/passthrough-bench.l2-init
# lab-bins: /usr/bin/strace
# Three columns, interleaved per round: `svmm passthrough` (from e1000e: preflight, journaled bind,
# VFIO, reset, DMA map, boot), `svmm run --device` and QEMU (both with the e1000e already on vfio-pci).
# Same stock kernel, same initramfs (busybox + an init that prints the marker and powers off), same
# 256 MiB, one vCPU, nested KVM in this L1. Each start is timed in L1 from just before the command to
# the moment L1 reads L2's marker line from the VMM's console (a reader on the pipe stamps
# /proc/uptime). svmm passthrough's time includes its preflight, journaled bind of the e1000e to
# vfio-pci, reset, DMA map, and (after the marker) nothing; QEMU gets the device already on
# vfio-pci (the bind is done before its clock starts) and boots through SeaBIOS. After the timed
# runs, one more run of each under `strace -f -e trace=ioctl` counts VFIO_IOMMU_MAP_DMA calls — the
# truth for both, next to the count svmm prints. Results: artifact passthrough-bench.txt.
. /lab/lib.sh
DEV=0000:02:00.0
RUNS=${RUNS:-3}
drv() { basename "$(readlink "/sys/bus/pci/devices/$1/driver" 2>/dev/null)" 2>/dev/null || echo none; }
check_eq e1000e-before "$(drv $DEV)" e1000e

R=/tmp/l2bench
rm -rf $R && mkdir -p $R/bin $R/proc $R/sys $R/dev
cp /bin/busybox $R/bin/busybox
cp /lab/files/passthrough-bench.l2-init $R/init
chmod 755 $R/init
(cd $R && find . | cpio -o -H newc >/tmp/l2-bench.cpio 2>/dev/null)

now() { cut -d' ' -f1 /proc/uptime; }
# stamp FILE: copies its input, writing L1's uptime to FILE when L2's marker goes by.
stamp() {
  while IFS= read -r line; do
    case "$line" in *SVMM-L2-INIT-OK*) now >"$1" ;; esac
    printf '%s\n' "$line"
  done
}
elapsed() { [ -s "$2" ] && awk -v a="$1" -v b="$(cat "$2")" 'BEGIN { printf "%.2f", b - a }'; }
median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
SVMM_CMD="svmm passthrough $DEV --kernel $L2_KERNEL --initrd /tmp/l2-bench.cpio --mem 256M --cpus 1"
SVMM_APPEND="console=ttyS0 panic=-1 reboot=k acpi=noirq quiet"

QEMU_CMD="qemu-system-x86_64 -enable-kvm -cpu host -m 256 -smp 1 -display none -vga none -monitor none -serial stdio -no-reboot -nic none -kernel $L2_KERNEL -initrd /tmp/l2-bench.cpio -device vfio-pci,host=$DEV"
RUNDEV_CMD="svmm run --device $DEV --kernel $L2_KERNEL --initrd /tmp/l2-bench.cpio --mem 256M --cpus 1"
to_vfio() {
  echo vfio-pci >/sys/bus/pci/devices/$DEV/driver_override
  echo $DEV >/sys/bus/pci/devices/$DEV/driver/unbind
  echo $DEV >/sys/bus/pci/drivers_probe
}
to_e1000e() {
  echo $DEV >/sys/bus/pci/devices/$DEV/driver/unbind
  echo >/sys/bus/pci/devices/$DEV/driver_override
  echo $DEV >/sys/bus/pci/drivers_probe
}
# timed NAME RUN CMD...: one start, its seconds appended to $NAME_times (empty when L2 never ran).
timed() {
  _n=$1; _i=$2; shift 2
  rm -f /tmp/t-$_n-$_i
  _t0=$(now)
  timeout -s TERM 200 "$@" </dev/null 2>&1 | stamp /tmp/t-$_n-$_i >/tmp/$_n-$_i.log
  _t=$(elapsed "$_t0" /tmp/t-$_n-$_i)
  _k=$(grep -o 'SVMM-L2-INIT-OK uptime [0-9.]*' /tmp/$_n-$_i.log | head -n 1 | cut -d' ' -f3)
  echo "passthrough-bench: $_n run $_i: ${_t:-none} s to L2's init (L2's own uptime then: ${_k:-?} s) $(grep -o '[0-9]* DMA map calls, [0-9]* MiB pinned' /tmp/$_n-$_i.log | head -n 1)"
  eval "${_n}_times=\"\$${_n}_times $_t\""
  eval "${_n}_kernel=\"\$${_n}_kernel $_k\""
}
# Interleaved rounds (svmm passthrough, then with the e1000e on vfio-pci: svmm run --device and
# QEMU), so a change in the host's load hits all three alike. Binding for the last two is untimed.
svmm_times=""; rundev_times=""; qemu_times=""
for i in $(seq 1 $RUNS); do
  timed svmm $i $SVMM_CMD --cmdline "$SVMM_APPEND"
  [ "$(drv $DEV)" = e1000e ] || fail svmm-run-$i-restored "e1000e on '$(drv $DEV)' after run $i"
  to_vfio
  [ "$(drv $DEV)" = vfio-pci ] || fail vfio-bind-$i "e1000e on '$(drv $DEV)'"
  timed rundev $i $RUNDEV_CMD --cmdline "$SVMM_APPEND"
  timed qemu $i $QEMU_CMD -append "console=ttyS0 panic=-1 quiet"
  to_e1000e
done
check_eq e1000e-back-after-rounds "$(drv $DEV)" e1000e
svmm_maps=$(grep -o '[0-9]* DMA map calls' /tmp/svmm-1.log | head -n 1 | cut -d' ' -f1)
artifact /tmp/svmm-1.log passthrough-bench-svmm-console.log
artifact /tmp/qemu-1.log passthrough-bench-qemu-console.log
to_vfio

# DMA map calls, counted by strace for both (untimed runs).
# VFIO_IOMMU_MAP_DMA and VFIO_DEVICE_PCI_HOT_RESET share the number _IO(';', 113) (strace prints
# "VFIO_DEVICE_PCI_HOT_RESET or VFIO_IOMMU_MAP_DMA"); -y names each fd's file, and a MAP_DMA is the
# one on the container, /dev/vfio/vfio.
mapcount() {
  awk 'index($0, "</dev/vfio/vfio>, ") && (index($0, "VFIO_IOMMU_MAP_DMA") || index($0, "0x3b, 0x71")) && $(NF - 1) == "=" && $NF == "0" { n++ } END { print n + 0 }' "$1"
}
timeout -s KILL 240 strace -f -y -e trace=ioctl -o /tmp/strace-qemu.txt $QEMU_CMD -append "console=ttyS0 panic=-1 quiet" </dev/null >/tmp/qemu-strace.log 2>&1
qemu_maps=$(mapcount /tmp/strace-qemu.txt)
grep -E '</dev/vfio/vfio>, ' /tmp/strace-qemu.txt | head -n 200 >/tmp/qemu-maps.txt
artifact /tmp/qemu-maps.txt passthrough-bench-qemu-container-ioctls.txt
to_e1000e
check_eq e1000e-back-after-qemu "$(drv $DEV)" e1000e
# svmm maps guest RAM before its vCPU starts, and a traced KVM_RUN loop is slow, so once svmm has
# attached the device and L2's kernel has printed something, svmm gets SIGTERM (its own stop path:
# reset, unmap, restore) and strace follows it to the end.
strace -f -y -e trace=ioctl -o /tmp/strace-svmm.txt $SVMM_CMD --cmdline "console=ttyS0 panic=-1 reboot=k acpi=noirq" </dev/null >/tmp/svmm-strace.log 2>&1 &
tracer=$!
n=0
while [ $n -lt 180 ] && ! grep -q '^\[ ' /tmp/svmm-strace.log; do sleep 1; n=$((n + 1)); done
svmm_pid=$(pidof svmm)
[ -n "$svmm_pid" ] && kill -TERM $svmm_pid
n=0
while [ $n -lt 180 ] && kill -0 $tracer 2>/dev/null; do sleep 1; n=$((n + 1)); done
kill -0 $tracer 2>/dev/null && kill -KILL $tracer
wait $tracer
svmm_maps_strace=$(mapcount /tmp/strace-svmm.txt)
grep -E '</dev/vfio/vfio>, ' /tmp/strace-svmm.txt | head -n 200 >/tmp/svmm-maps.txt
artifact /tmp/svmm-maps.txt passthrough-bench-svmm-container-ioctls.txt
check_eq sigterm-path-ran "$(grep -c 'guest ended: stopped by signal' /tmp/svmm-strace.log)" 1
check_eq e1000e-back-after-svmm-sigterm "$(drv $DEV)" e1000e
artifact /tmp/svmm-strace.log passthrough-bench-svmm-sigterm.log

svmm_med=$(echo "$svmm_times" | median)
qemu_med=$(echo "$qemu_times" | median)
rundev_med=$(echo "$rundev_times" | median)
if [ -n "$svmm_med" ] && [ "$(echo $svmm_times | wc -w)" -eq "$RUNS" ]; then pass svmm-starts-timed; else fail svmm-starts-timed "times: '$svmm_times'"; fi
if [ -n "$qemu_med" ] && [ "$(echo $qemu_times | wc -w)" -eq "$RUNS" ]; then pass qemu-starts-timed; else fail qemu-starts-timed "times: '$qemu_times'"; fi
check_eq svmm-map-count-matches-strace "$svmm_maps" "$svmm_maps_strace"
if [ "${qemu_maps:-0}" -gt 0 ]; then pass qemu-map-calls-counted; else fail qemu-map-calls-counted "no MAP_DMA in QEMU's strace"; fi
if [ -n "$rundev_med" ] && [ "$(echo $rundev_times | wc -w)" -eq "$RUNS" ]; then pass rundev-starts-timed; else fail rundev-starts-timed "times: '$rundev_times'"; fi
printf 'runs=%s\nsvmm_seconds=%s\nrundev_seconds=%s\nqemu_seconds=%s\nsvmm_median=%s\nrundev_median=%s\nqemu_median=%s\n' \
  "$RUNS" "$(echo $svmm_times)" "$(echo $rundev_times)" "$(echo $qemu_times)" "$svmm_med" "$rundev_med" "$qemu_med" >/tmp/passthrough-bench.txt
printf 'svmm_l2_uptime_at_init=%s\nrundev_l2_uptime_at_init=%s\nqemu_l2_uptime_at_init=%s\n' \
  "$(echo $svmm_kernel)" "$(echo $rundev_kernel)" "$(echo $qemu_kernel)" >>/tmp/passthrough-bench.txt
printf 'svmm_dma_maps=%s\nsvmm_dma_maps_strace=%s\nqemu_dma_maps_strace=%s\n' "$svmm_maps" "$svmm_maps_strace" "$qemu_maps" >>/tmp/passthrough-bench.txt
cat /tmp/passthrough-bench.txt
artifact /tmp/passthrough-bench.txt
