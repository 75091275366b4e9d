#!/bin/sh
# lab-description: svmm passthrough gives L1's e1000e to an L2 stock kernel; L2 binds e1000e, link up, MSI/MSI-X counts, pings over a QEMU hub with L1's second NIC; e1000e back on e1000e after
# lab-machine: hub-nic
# lab-needs: l2
# lab-timeout: 600
# lab-files: Tests/Lab/scenarios/passthrough-nic.l2-init
# The hub-nic machine puts the e1000e (0000:02:00.0) and a second L1 NIC (e1000, 0000:00:06.0) on
# QEMU hub 0, so L2's pings to L1 cross the e1000e's DMA through the (emulated) IOMMU and nothing
# else. L2 gets its own initramfs built here: busybox, L1's e1000e.ko (same kernel), and
# passthrough-nic.l2-init, which configures 10.9.0.2, pings 10.9.0.1 (L1), answers L1's pings, powers off.
# Truth: L2's own /sys and /proc (printed by its init), L1's ping counts and L1's /sys driver link.
. /lab/lib.sh

DEV=0000:02:00.0
PEER=0000:00:06.0
drv() { basename "$(readlink "/sys/bus/pci/devices/$1/driver" 2>/dev/null)" 2>/dev/null || echo none; }
check_eq e1000e-on-e1000e-before "$(drv $DEV)" e1000e

# L1's side of the hub.
peer_if=$(ls "/sys/bus/pci/devices/$PEER/net" 2>/dev/null | head -n 1)
if [ -z "$peer_if" ]; then fail peer-nic "no netdev under $PEER"; fi
ip addr add 10.9.0.1/24 dev "$peer_if"
ip link set "$peer_if" up

# L2's initramfs.
ko=$(grep '/e1000e.ko$' /lab/modules.order | head -n 1)
rm -rf /tmp/l2root && mkdir -p /tmp/l2root/bin /tmp/l2root/proc /tmp/l2root/sys /tmp/l2root/dev
cp /bin/busybox /tmp/l2root/bin/busybox
cp "/$ko" /tmp/l2root/e1000e.ko
cp /lab/files/passthrough-nic.l2-init /tmp/l2root/init
chmod +x /tmp/l2root/init
(cd /tmp/l2root && find . | cpio -o -H newc 2>/dev/null) >/tmp/l2-nic.cpio
check_eq l2-initramfs-built "$([ -s /tmp/l2-nic.cpio ] && echo yes || echo no)" yes

# L1 pings L2 while it runs (L2 answers from ~its 5th second to its ~20th).
( sleep 1; for i in $(seq 1 90); do ping -c 1 -W 1 10.9.0.2 >/dev/null 2>&1 && echo ok; sleep 1; done ) >/tmp/l1-ping.txt 2>&1 &
pinger=$!

# A guest that keeps L1's only vCPU busy starves every shell loop here, so svmm runs in the
# foreground under `timeout`: if L2 has not powered off after 150 s, svmm gets SIGTERM, which must
# still stop the guest, reset the device and restore e1000e (checked below either way).
t0=$(cut -d' ' -f1 /proc/uptime)
timeout -s TERM 150 svmm passthrough "$DEV" --kernel "$L2_KERNEL" --initrd /tmp/l2-nic.cpio \
  --cmdline "console=ttyS0 panic=-1 reboot=k acpi=noirq quiet" --mem 256M --cpus 1 </dev/null >/tmp/pt-l2.log 2>&1
rc=$?
t1=$(cut -d' ' -f1 /proc/uptime)
i=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%d", b - a }')
termed=no
grep -q 'guest ended: stopped by signal' /tmp/pt-l2.log && termed=yes
echo "passthrough-nic: svmm exited $rc after $i s, SIGTERM sent: $termed"
if [ "$termed" = yes ]; then
  check_eq sigterm-exit-status "$rc" 143
  fail l2-powered-off-in-time "L2 had not powered off after 150 s; svmm was stopped with SIGTERM"
  check_eq reset-after-sigterm "$(grep -c 'reset after stop: VFIO_DEVICE_RESET' /tmp/pt-l2.log)" 1
fi
kill "$pinger" 2>/dev/null
lab_log "svmm output: $(grep -v "^\\[" /tmp/pt-l2.log | tail -n 12 | tr '\n' '|')"
artifact /tmp/pt-l2.log passthrough-l2-console.log

[ "$termed" = no ] && check_eq svmm-exit "$rc" 0
if grep -q SVMM-L2-INIT-OK /tmp/pt-l2.log; then pass l2-init-ran; else fail l2-init-ran "no marker; last lines: $(tail -n 8 /tmp/pt-l2.log | tr '\n' '|')"; fi
check_eq l2-e1000e-bound "$(grep -c '^L2-PCI 0000:00:01.0 8086:10d3 0x020000 e1000e' /tmp/pt-l2.log)" 1
check_eq l2-link-up "$(grep -c '^L2-CARRIER 1 operstate up' /tmp/pt-l2.log)" 1
msi=$(grep '^L2-INTLINE' /tmp/pt-l2.log | grep -c 'MSI')
if [ "$msi" -gt 0 ]; then pass l2-msi-lines; else fail l2-msi-lines "no MSI/MSI-X line for eth0 in L2's /proc/interrupts: $(grep '^L2-INTLINE' /tmp/pt-l2.log | head -n 3 | tr '\n' '|')"; fi
before=$(sed -n 's/^L2-IRQS-BEFORE \([0-9]*\).*/\1/p' /tmp/pt-l2.log)
after=$(sed -n 's/^L2-IRQS-AFTER \([0-9]*\).*/\1/p' /tmp/pt-l2.log)
if [ -n "$before" ] && [ -n "$after" ] && [ "$after" -gt "$before" ]; then pass l2-interrupts-count-up; else fail l2-interrupts-count-up "before '$before' after '$after'"; fi
got=$(sed -n 's/^L2-PING-RECEIVED \([0-9]*\).*/\1/p' /tmp/pt-l2.log)
if [ -n "$got" ] && [ "$got" -ge 3 ]; then pass l2-pings-l1; else fail l2-pings-l1 "L2 got '$got' of 5 replies from L1"; fi
l1got=$(grep -c ok /tmp/l1-ping.txt)
if [ "$l1got" -ge 3 ]; then pass l1-pings-l2; else fail l1-pings-l2 "L1 got $l1got replies from L2"; fi
check_eq e1000e-back-on-e1000e "$(drv $DEV)" e1000e
check_eq journal-holds-nothing "$(svmm status 2>/dev/null | grep -c 'holds nothing')" 1
note=$(grep -A4 'passthrough summary' /tmp/pt-l2.log | tr '\n' ' ')
echo "closing note: $note"
case "$note" in *"DMA backend VFIO type1v2"*"interrupts "*"MSI"*"reset before: "*"reset after: "*) pass closing-note ;; *) fail closing-note "missing or incomplete: $note" ;; esac
grep 'passthrough summary' -A4 /tmp/pt-l2.log >/tmp/pt-note.txt
artifact /tmp/pt-note.txt passthrough-closing-note.txt
