#!/bin/sh
# lab-description: virtio-blk sequential read in L2: svmm run --disk vs QEMU's virtio-blk on the same image in the same L1 (Benchmarks/run virtio-blk)
# lab-machine: standard
# lab-kind: bench
# lab-needs: l2
# lab-modules: virtio_pci virtio_blk
# lab-timeout: 600
# L2's init reads all of /dev/vda once with dd (1 MiB blocks, cold L2 page cache) and prints the
# seconds it took (from L2's /proc/uptime); the image lives in L1's tmpfs, so both VMMs read it
# from L1's page cache. Results: artifact virtio-bench.txt (svmm_mbps, qemu_mbps).
. /lab/lib.sh
MB=64
IMG=/tmp/bench.img
dd if=/dev/zero of=$IMG bs=1M count=$MB 2>/dev/null
R=/tmp/l2bench
mkdir -p $R/bin $R/proc $R/sys $R/dev $R/tmp
cp /bin/busybox $R/bin/busybox
grep -E '/(virtio[a-z_]*|virtio_pci[a-z_]*)\.ko' /lab/modules.order >$R/modules.order || true
while read -r ko; do mkdir -p "$R/$(dirname "$ko")"; cp "/$ko" "$R/$ko"; done <$R/modules.order
write_init() {
cat >"$1" <<EOI
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "SVMM-L2-INIT-OK"
while read -r ko; do insmod "/\$ko" 2>/dev/null; done </modules.order
n=0; while [ ! -b /dev/vda ] && [ \$n -lt 100 ]; do sleep 0.1; n=\$((n+1)); done
echo "L2-CLOCKSOURCE \$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
echo "L2-CPUFLAGS \$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\\n' | grep -E '^(x2apic|tsc_deadline_timer|hypervisor|constant_tsc|nonstop_tsc|tsc_known_freq)\$' | tr '\\n' ' ')"
grep -E '^ *(LOC|CAL|RES|TLB|SPU|NMI)|virtio' /proc/interrupts | sed 's/^/L2-IRQ-BEFORE /'
echo "L2-STAT-BEFORE \$(grep '^cpu ' /proc/stat)"
t0=\$(cut -d' ' -f1 /proc/uptime)
dd if=/dev/vda of=/dev/null bs=1M 2>/tmp/dd.log
t1=\$(cut -d' ' -f1 /proc/uptime)
echo "L2-STAT-AFTER \$(grep '^cpu ' /proc/stat)"
grep -E '^ *(LOC|CAL|RES|TLB|SPU|NMI)|virtio' /proc/interrupts | sed 's/^/L2-IRQ-AFTER /'
echo "L2-READ-SECS \$(awk -v a=\$t0 -v b=\$t1 'BEGIN { printf "%.2f", b - a }') \$(tail -n 1 /tmp/dd.log)"
poweroff -f
EOI
}
tries=0
while :; do
  write_init $R/init; write_init /tmp/init.check; tries=$((tries + 1))
  cmp -s $R/init /tmp/init.check && break
  [ $tries -ge 5 ] && break
done
chmod 755 $R/init
(cd $R && find . | cpio -o -H newc >/tmp/l2-bench.cpio 2>/dev/null)

# SVMM_LOG_LEVEL=info: svmm logs its virtio-blk worker's counters (requests, batches, interrupts,
# time in buffer allocation / image reads / guest-RAM copies) when the device stops.
# $1: log file; the rest: extra environment.
svmm_read() {
  log=$1; shift
  env SVMM_LOG_LEVEL=info "$@" svmm run --kernel "$L2_KERNEL" --initrd /tmp/l2-bench.cpio --cmdline "console=ttyS0 panic=-1 reboot=k acpi=noirq quiet" \
    --mem 256M --disk $IMG,readonly </dev/null >"$log" 2>&1 &
  pid=$!
  waited=0
  while [ -d /proc/$pid ] && [ "$(cut -d' ' -f3 /proc/$pid/stat 2>/dev/null)" != Z ] && [ $waited -lt 240 ]; do sleep 1; waited=$((waited + 1)); done
  [ -d /proc/$pid ] && [ "$(cut -d' ' -f3 /proc/$pid/stat 2>/dev/null)" != Z ] && kill -9 $pid
  wait $pid
  sed -n 's/^L2-READ-SECS \([0-9.]*\).*/\1/p' "$log" | head -n 1
}
svmm_secs=$(svmm_read /tmp/svmm-bench.log)

L2_INITRD=/tmp/l2-bench.cpio
l2_boot 240 /tmp/qemu-bench.log -drive file=$IMG,if=virtio,format=raw,readonly=on
qemu_secs=$(sed -n 's/^L2-READ-SECS \([0-9.]*\).*/\1/p' /tmp/qemu-bench.log | head -n 1)

if [ -n "$svmm_secs" ]; then pass svmm-read-done; else fail svmm-read-done "no L2-READ-SECS: $(tail -n 3 /tmp/svmm-bench.log)"; fi
if [ -n "$qemu_secs" ]; then pass qemu-read-done; else fail qemu-read-done "no L2-READ-SECS: $(tail -n 3 /tmp/qemu-bench.log)"; fi
mbps() { awk -v s="$1" -v m=$MB 'BEGIN { if (s > 0) printf "%.1f", m / s; else print "" }'; }
printf 'svmm_seconds=%s\nqemu_seconds=%s\nsvmm_mbps=%s\nqemu_mbps=%s\nmegabytes=%s\nsvmm_worker=%s\n' \
  "$svmm_secs" "$qemu_secs" "$(mbps "$svmm_secs")" "$(mbps "$qemu_secs")" $MB \
  "$(grep -o 'virtio-blk worker: .*' /tmp/svmm-bench.log | tail -n 1)" >/tmp/virtio-bench.txt
# What L2 saw during dd under each VMM (clocksource, CPU flags, interrupt counts, CPU time split).
for v in svmm qemu; do grep -E '^L2-(CLOCKSOURCE|CPUFLAGS|IRQ-|STAT-)' /tmp/$v-bench.log | sed "s/^/$v /"; done >/tmp/virtio-bench-l2.txt
cat /tmp/virtio-bench-l2.txt
artifact /tmp/virtio-bench-l2.txt
cat /tmp/virtio-bench.txt
artifact /tmp/virtio-bench.txt
artifact /tmp/svmm-bench.log svmm-bench-console.log
artifact /tmp/qemu-bench.log qemu-bench-console.log
