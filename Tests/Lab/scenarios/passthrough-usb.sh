#!/bin/sh
# lab-description: svmm passthrough 0000:02:00.0 --usb 46f4:0001: L2 gets the e1000e (bound, link up, interrupts, pings L1) and the redirected usb-storage (reads the marker); refusals first change nothing; afterwards e1000e and usb-storage are L1's again
# lab-machine: hub-nic
# lab-needs: l2
# lab-timeout: 600
# lab-files: Tests/Lab/scenarios/passthrough-usb.l2-init
# Truth: L1's /sys driver links and dd of L1's /dev/sda before svmm runs; L2's own /sys, /proc and
# /dev as its init prints them; L1's /sys again after svmm exits. The e1000e and L1's e1000 at
# 0000:00:06.0 share QEMU hub 0 (see passthrough-nic).
. /lab/lib.sh
DEV=0000:02:00.0
PEER=0000:00:06.0
drv() { basename "$(readlink "/sys/bus/pci/devices/$1/driver" 2>/dev/null)" 2>/dev/null || echo none; }
check_eq e1000e-before "$(drv $DEV)" e1000e

lab_wait 20 lab_usb_stick_ready
dev=$(lab_usb_stick)
disk=$(lab_usb_disk_of "$dev")
iface=/sys/bus/usb/devices/$dev:1.0
_udrv() { if [ -L $iface/driver ]; then basename "$(readlink $iface/driver)"; else echo none; fi; }
check_eq l1-usb-storage-before "$(_udrv)" usb-storage
[ -n "$disk" ] && echo 0 >/sys/block/$disk/queue/read_ahead_kb
_head() { disk=$(lab_usb_disk_of "$(lab_usb_stick)") && dd if=/dev/$disk of=/tmp/l1-head.bin bs=4096 count=1 2>/dev/null && [ "$(wc -c </tmp/l1-head.bin)" = 4096 ]; }
lab_wait 30 _head
want0=$(head -c 15 /tmp/l1-head.bin)
want5=$(dd if=/tmp/l1-head.bin bs=512 skip=5 count=1 2>/dev/null | md5sum | cut -d' ' -f1)
want_speed=$(cat /sys/bus/usb/devices/$dev/speed)
check_eq l1-truth-marker "$want0" SVMM-USB-MARKER
sync
_idle() { [ "$(cat /sys/block/$disk/inflight | tr -s ' ' | sed 's/^ //')" = "0 0" ]; }
lab_wait 10 _idle

# Refusals happen before anything is bound: QEMU's usb-kbd and usb-tablet are both 0627:0001, and
# 1d6b:0002 is L1's USB2 root hub. Each is one line, exit 1, and the e1000e never leaves e1000e.
for u in 0627:0001 1d6b:0002; do
  svmm passthrough "$DEV" --usb "$u" --kernel "$L2_KERNEL" --mem 256M </dev/null >/tmp/refuse-$u.out 2>&1
  rc=$?
  lab_log "refusal --usb $u: rc $rc: $(tr '\n' '|' </tmp/refuse-$u.out)"
  check_eq "refused-$u-exit" "$rc" 1
  check_eq "refused-$u-e1000e-untouched" "$(drv $DEV)" e1000e
done
check_eq refused-ambiguous-says-why "$(grep -c '2 devices match 0627:0001' /tmp/refuse-0627:0001.out)" 1
check_eq refused-root-hub-says-why "$(grep -c 'is a root hub' /tmp/refuse-1d6b:0002.out)" 1
check_eq refusals-journal-nothing "$(svmm status 2>/dev/null | grep -c 'holds nothing')" 1
check_eq refusals-usb-storage-untouched "$(_udrv)" usb-storage

peer_if=$(ls "/sys/bus/pci/devices/$PEER/net" 2>/dev/null | head -n 1)
[ -n "$peer_if" ] || fail peer-nic "no netdev under $PEER"
ip addr add 10.9.0.1/24 dev "$peer_if"
ip link set "$peer_if" up

rm -rf /tmp/l2root && mkdir -p /tmp/l2root/bin /tmp/l2root/proc /tmp/l2root/sys /tmp/l2root/dev /tmp/l2root/mods
cp /bin/busybox /tmp/l2root/bin/busybox
cp /lab/modules.order /tmp/l2root/mods/order
while read -r m; do cp "/$m" /tmp/l2root/mods/; done </lab/modules.order
cp /lab/files/passthrough-usb.l2-init /tmp/l2root/init
chmod +x /tmp/l2root/init
(cd /tmp/l2root && find . | cpio -o -H newc 2>/dev/null) >/tmp/l2-ptusb.cpio

# As in passthrough-nic: in the foreground under `timeout -s TERM`, which must still restore.
timeout -s TERM 240 svmm passthrough "$DEV" --usb 46f4:0001 --json --kernel "$L2_KERNEL" --initrd /tmp/l2-ptusb.cpio \
  --cmdline "console=ttyS0 panic=-1 reboot=k acpi=noirq quiet" --mem 256M --cpus 1 </dev/null >/tmp/pt.json 2>/tmp/pt-l2.log
rc=$?
echo "passthrough-usb: svmm exited $rc"
grep -E '^L2-|svmm' /tmp/pt-l2.log | head -50
artifact /tmp/pt-l2.log passthrough-usb-l2-console.log
artifact /tmp/pt.json passthrough-usb-summary.json

check_eq svmm-exit "$rc" 0
if grep -q SVMM-L2-INIT-OK /tmp/pt-l2.log; then pass l2-init-ran; else fail l2-init-ran "last: $(tail -n 8 /tmp/pt-l2.log | tr '\n' '|')"; fi
check_eq l2-e1000e-bound "$(grep -c '^L2-PCI 0000:00:01.0 8086:10d3 0x020000 e1000e' /tmp/pt-l2.log)" 1
check_eq l2-xhci-bound "$(grep -c '^L2-PCI 0000:00:14.0 1b36:000d 0x0c0330 xhci_hcd' /tmp/pt-l2.log)" 1
check_eq l2-link-up "$(grep -c '^L2-CARRIER 1 operstate up' /tmp/pt-l2.log)" 1
before=$(sed -n 's/^L2-IRQS-BEFORE \([0-9]*\).*/\1/p' /tmp/pt-l2.log)
after=$(sed -n 's/^L2-IRQS-AFTER \([0-9]*\).*/\1/p' /tmp/pt-l2.log)
if [ -n "$before" ] && [ -n "$after" ] && [ "$after" -gt "$before" ]; then pass l2-e1000e-interrupts-count-up; else fail l2-e1000e-interrupts-count-up "before '$before' after '$after'"; fi
got=$(sed -n 's/^L2-PING-RECEIVED \([0-9]*\).*/\1/p' /tmp/pt-l2.log)
if [ -n "$got" ] && [ "$got" -ge 3 ]; then pass l2-pings-l1; else fail l2-pings-l1 "L2 got '$got' of 5 replies"; fi
lab_log "L2 interrupt modes: $(grep '^L2-IRQMODE' /tmp/pt-l2.log | sort | uniq -c | tr '\n' '|')"
check_eq l2-xhci-uses-msix "$(grep -c '^L2-IRQMODE 0000:00:14.0 msix' /tmp/pt-l2.log)" 1
check_eq l2-storage-enumerated "$(grep -c "^L2-USB .* 46f4:0001 speed $want_speed 08/usb-storage" /tmp/pt-l2.log)" 1
check_eq l2-sector0-marker "$(sed -n 's/^L2-SECTOR0 //p' /tmp/pt-l2.log | tr -d '\r')" "$want0"
check_eq l2-sector5-md5 "$(sed -n 's/^L2-SECTOR5 //p' /tmp/pt-l2.log | tr -d '\r')" "$want5"

# The closing note and the JSON summary name the USB attachment and what was detached.
check_eq note-names-usb "$(grep -c "svmm:   usb 46f4:0001: redirected host 46f4:0001 at $dev; host drivers detached, given back at exit: 0:usb-storage" /tmp/pt-l2.log)" 1
check_eq json-usb-redirected "$(grep -cE '"kind" ?: ?"redirected"' /tmp/pt.json)" 1
check_eq json-usb-detached "$(grep -cE '"0:usb-storage"' /tmp/pt.json)" 1

check_eq e1000e-after "$(drv $DEV)" e1000e
check_eq journal-holds-nothing "$(svmm status 2>/dev/null | grep -c 'holds nothing')" 1
_rebound() { [ "$(_udrv)" = usb-storage ]; }
lab_wait 20 _rebound
check_eq l1-usb-storage-after "$(_udrv)" usb-storage
lab_wait 20 lab_usb_stick_ready
d2=$(lab_usb_disk_of "$dev")
check_eq l1-disk-readable-after "$([ -n "$d2" ] && dd if=/dev/$d2 bs=512 count=1 2>/dev/null | head -c 15)" SVMM-USB-MARKER
