#!/bin/sh
# lab-description: USB storage sequential read in L2: L1's usb-storage redirected by svmm run --usb vs QEMU's qemu-xhci + usb-host in the same L1, and svmm's emulated storage (Benchmarks/run usb-read)
# lab-machine: standard
# lab-kind: bench
# lab-needs: l2
# lab-timeout: 900
# lab-files: Tests/Lab/scenarios/usb-bench.l2-init
# L2's init reads all of /dev/sda 8 times with dd bs=1M iflag=direct and prints the seconds (L2's
# /proc/uptime). Three L2 boots with the same kernel and initramfs: svmm --usb 46f4:0001 (libusb
# redirect), QEMU -device qemu-xhci -device usb-host,vendorid=0x46f4,productid=0x0001, and svmm
# --usb storage:IMG (emulated, IMG = a copy of the stick in L1's tmpfs). Results: artifact usb-bench.txt.
# Lab note: L1 has been seen to run a corrupted copy of a scenario (errors before anything ran);
# a rerun with the same content can repeat it, see Docs/XHCI.md.
. /lab/lib.sh
_find_storage() {
  for d in /sys/bus/usb/devices/*; do
    [ -f "$d/idVendor" ] && [ "$(cat "$d/idVendor"):$(cat "$d/idProduct")" = 46f4:0001 ] && { echo "${d##*/}"; return 0; }
  done
  return 1
}
_disk_of() { for b in /sys/bus/usb/devices/$1:1.0/host*/target*/*/block/*; do [ -e "$b" ] && { echo "${b##*/}"; return 0; }; done; return 1; }
_have_disk() { dev=$(_find_storage) && _disk_of "$dev" >/dev/null; }
lab_wait 20 _have_disk
dev=$(_find_storage)
disk=$(_disk_of "$dev")
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

l2_run 300 /tmp/svmm-redirect.log env SVMM_USB_STATS=1 svmm run --kernel "$L2_KERNEL" --initrd /tmp/l2-usb.cpio --cmdline "$CMD" \
  --mem 256M --cpus 1 --usb 46f4:0001
_rebound() { [ -L /sys/bus/usb/devices/$dev:1.0/driver ] && [ "$(basename "$(readlink /sys/bus/usb/devices/$dev:1.0/driver)")" = usb-storage ]; }
lab_wait 20 _rebound
L2_INITRD=/tmp/l2-usb.cpio
L2_APPEND="$CMD"
l2_boot 300 /tmp/qemu-usbhost.log -device qemu-xhci,id=bx -device usb-host,bus=bx.0,vendorid=0x46f4,productid=0x0001
lab_wait 20 _rebound
l2_run 300 /tmp/svmm-emulated.log env SVMM_USB_STATS=1 svmm run --kernel "$L2_KERNEL" --initrd /tmp/l2-usb.cpio --cmdline "$CMD" \
  --mem 256M --cpus 1 --usb storage:/tmp/usb-copy.img,readonly

secs() { sed -n 's/^L2-READ-SECS \([0-9.]*\).*/\1/p' "$1" | head -n 1; }
bytes() { sed -n 's/^L2-READ-SECS [0-9.]* bytes \([0-9]*\).*/\1/p' "$1" | head -n 1; }
for run in svmm-redirect qemu-usbhost svmm-emulated; do
  log=/tmp/$run.log
  if [ -n "$(secs $log)" ] && [ "$(bytes $log)" -gt 0 ] 2>/dev/null; then pass $run-read-done; else fail $run-read-done "$(grep -E '^L2-|svmm|qemu' $log | tail -n 3 | tr '\n' '|')"; fi
  check_eq $run-marker "$(sed -n 's/^L2-SECTOR0 //p' $log | tr -d '\r')" SVMM-USB-MARKER
  artifact $log $run-console.log
done
mbps() { awk -v s="$1" -v b="$2" 'BEGIN { if (s > 0 && b > 0) printf "%.2f", b / s / 1048576; else print "" }'; }
{
  for run in svmm-redirect qemu-usbhost svmm-emulated; do
    k=$(echo $run | tr - _)
    echo "${k}_seconds=$(secs /tmp/$run.log)"
    echo "${k}_bytes=$(bytes /tmp/$run.log)"
    echo "${k}_mbps=$(mbps "$(secs /tmp/$run.log)" "$(bytes /tmp/$run.log)")"
  done
} >/tmp/usb-bench.txt
cat /tmp/usb-bench.txt
artifact /tmp/usb-bench.txt
