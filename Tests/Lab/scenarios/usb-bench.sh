#!/bin/sh
# lab-description: USB storage sequential read in L2: L1's usb-storage redirected by svmm run --usb vs QEMU's qemu-xhci + usb-host in the same L1, and svmm's emulated storage (Benchmarks/run usb-read)
# lab-machine: standard
# lab-kind: bench
# lab-needs: l2
# lab-timeout: 1500
# lab-files: Tests/Lab/scenarios/usb-bench.l2-init
# L2's init reads all of /dev/sda 8 times with dd bs=1M iflag=direct between two console markers.
# L1 stamps every console line with its own /proc/uptime, so both VMMs are timed on one clock (svmm's
# L2 has no kvm-clock and keeps time with refined-jiffies; QEMU's has kvm-clock). Five L2 boots with
# the same kernel and initramfs, the two compared VMMs alternating so that load from other work on
# the machine falls on both: svmm --usb 46f4:0001 (libusb redirect), QEMU -device qemu-xhci -device
# usb-host,vendorid=0x46f4,productid=0x0001, both again, then svmm --usb storage:IMG (emulated, IMG =
# a copy of the stick in L1's tmpfs). Each side's best run counts. Results: artifact usb-bench.txt.
. /lab/lib.sh
lab_wait 20 lab_usb_stick_ready
dev=$(lab_usb_stick)
disk=$(lab_usb_disk_of "$dev")
dd if=/dev/$disk of=/tmp/usb-copy.img bs=1M 2>/dev/null
sync
_idle() { [ "$(cat /sys/block/$disk/inflight | tr -s ' ' | sed 's/^ //')" = "0 0" ]; }
lab_wait 10 _idle

rm -rf /tmp/l2root && mkdir -p /tmp/l2root/bin /tmp/l2root/proc /tmp/l2root/sys /tmp/l2root/dev /tmp/l2root/mods /tmp/l2root/tmp
cp /bin/busybox /tmp/l2root/bin/busybox
cp /lab/modules.order /tmp/l2root/mods/order
while read -r m; do cp "/$m" /tmp/l2root/mods/; done </lab/modules.order
cp /lab/files/usb-bench.l2-init /tmp/l2root/init
chmod +x /tmp/l2root/init
(cd /tmp/l2root && find . | cpio -o -H newc 2>/dev/null) >/tmp/l2-usb.cpio
CMD="console=ttyS0 panic=-1 reboot=k acpi=noirq quiet"

# Every console line gets L1's uptime in front (one awk process, no fork per line).
l2_run() {
  _t=$1; _log=$2; shift 2
  timeout -s KILL "$_t" "$@" </dev/null 2>&1 |
    awk '{ sub(/\r$/, ""); u = ""; getline u < "/proc/uptime"; close("/proc/uptime"); split(u, a, " "); print a[1], $0; fflush() }' >"$_log"
  # Progress on the console, so a run that L1 never finishes (Docs/LAB.md) still shows what it got.
  grep -E 'L2-READ|svmm: usb stats' "$_log" | sed "s|^|lab: $(basename "$_log" .log): |"
}
_rebound() { [ -L /sys/bus/usb/devices/$dev:1.0/driver ] && [ "$(basename "$(readlink /sys/bus/usb/devices/$dev:1.0/driver)")" = usb-storage ]; }
L2_INITRD=/tmp/l2-usb.cpio
L2_APPEND="$CMD"
svmm_redirect() {
  l2_run 300 "$1" env SVMM_USB_STATS=1 svmm run --kernel "$L2_KERNEL" --initrd /tmp/l2-usb.cpio --cmdline "$CMD" \
    --mem 256M --cpus 1 --usb 46f4:0001
  lab_wait 20 _rebound
}
qemu_usbhost() {
  l2_boot 300 "$1" -device qemu-xhci,id=bx -device usb-host,bus=bx.0,vendorid=0x46f4,productid=0x0001
  lab_wait 20 _rebound
}
svmm_redirect /tmp/svmm-redirect-1.log
qemu_usbhost /tmp/qemu-usbhost-1.log
svmm_redirect /tmp/svmm-redirect-2.log
qemu_usbhost /tmp/qemu-usbhost-2.log
l2_run 300 /tmp/svmm-emulated-1.log env SVMM_USB_STATS=1 svmm run --kernel "$L2_KERNEL" --initrd /tmp/l2-usb.cpio --cmdline "$CMD" \
  --mem 256M --cpus 1 --usb storage:/tmp/usb-copy.img,readonly

# L1 seconds between the markers; L2's own count; bytes read.
l1secs() { awk '$2 == "L2-READ-START" { s = $1 } $2 == "L2-READ-SECS" && s != "" { printf "%.2f", $1 - s; exit }' "$1"; }
l2secs() { awk '$2 == "L2-READ-SECS" { print $3; exit }' "$1"; }
bytes() { awk '$2 == "L2-READ-SECS" { print $5; exit }' "$1"; }
mbps() { awk -v s="$1" -v b="$2" 'BEGIN { if (s > 0 && b > 0) printf "%.2f", b / s / 1048576; else print "" }'; }
for run in svmm-redirect-1 qemu-usbhost-1 svmm-redirect-2 qemu-usbhost-2 svmm-emulated-1; do
  log=/tmp/$run.log
  if [ -n "$(l1secs $log)" ] && [ "$(bytes $log)" -gt 0 ] 2>/dev/null; then pass $run-read-done; else fail $run-read-done "$(grep -E 'L2-|svmm|qemu' $log | tail -n 3 | tr '\n' '|')"; fi
  check_eq $run-marker "$(awk '$2 == "L2-SECTOR0" { print $3; exit }' $log | tr -d '\r')" SVMM-USB-MARKER
  artifact $log $run-console.log
done
# Each side's best run (the one the machine's other load disturbed least).
best() { for r in "$@"; do mbps "$(l1secs /tmp/$r.log)" "$(bytes /tmp/$r.log)"; echo; done | awk 'NF && $1 > m { m = $1 } END { if (m != "") print m }'; }
{
  for run in svmm-redirect-1 qemu-usbhost-1 svmm-redirect-2 qemu-usbhost-2 svmm-emulated-1; do
    k=$(echo $run | tr - _)
    echo "${k}_l1_seconds=$(l1secs /tmp/$run.log)"
    echo "${k}_l2_seconds=$(l2secs /tmp/$run.log)"
    echo "${k}_bytes=$(bytes /tmp/$run.log)"
    echo "${k}_mbps=$(mbps "$(l1secs /tmp/$run.log)" "$(bytes /tmp/$run.log)")"
  done
  echo "svmm_redirect_mbps=$(best svmm-redirect-1 svmm-redirect-2)"
  echo "qemu_usbhost_mbps=$(best qemu-usbhost-1 qemu-usbhost-2)"
  echo "svmm_emulated_mbps=$(best svmm-emulated-1)"
} >/tmp/usb-bench.txt
cat /tmp/usb-bench.txt
artifact /tmp/usb-bench.txt
