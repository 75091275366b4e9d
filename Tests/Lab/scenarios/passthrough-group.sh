#!/bin/sh
# lab-description: svmm passthrough --group gives L1's bridged e1000 pair (one IOMMU group) to an L2 stock kernel; e1000 binds, link up, level-triggered INTx counts up, pings over a QEMU hub with L1's second NIC; both back on e1000 after
# lab-machine: hub-e1000
# lab-needs: l2
# lab-timeout: 600
# lab-files: Tests/Lab/scenarios/passthrough-group.l2-init
# The hub-e1000 machine puts the e1000 at 0000:05:01.0 (behind the pcie-pci-bridge, in one IOMMU
# group with 0000:05:02.0) and a second L1 NIC (e1000, 0000:00:06.0) on QEMU hub 0, so L2's pings
# to L1 cross 05:01.0's DMA through the (emulated) IOMMU and nothing else. QEMU's e1000 has no MSI:
# L2 can only use INTx, which svmm declares in its MP table as a level-triggered IOAPIC pin and
# delivers with an irqfd + resamplefd + VFIO unmask.
# Truth: L2's own /sys and /proc (printed by its init), L1's ping counts and L1's /sys driver links.
. /lab/lib.sh

DEV1=0000:05:01.0
DEV2=0000:05:02.0
PEER=0000:00:06.0
drv() { basename "$(readlink "/sys/bus/pci/devices/$1/driver" 2>/dev/null)" 2>/dev/null || echo none; }
grp() { basename "$(readlink "/sys/bus/pci/devices/$1/iommu_group")"; }
check_eq e1000-pair-on-e1000-before "$(drv $DEV1) $(drv $DEV2)" "e1000 e1000"
check_eq pair-shares-a-group "$(grp $DEV1)" "$(grp $DEV2)"
echo "passthrough-group: group $(grp $DEV1) holds: $(ls /sys/kernel/iommu_groups/$(grp $DEV1)/devices | tr '\n' ' ')"

# Without --group the pair is refused (the other e1000 still has its driver), with nothing changed.
svmm passthrough "$DEV1" --kernel "$L2_KERNEL" --initrd "$L2_INITRD" --mem 256M </dev/null >/tmp/pt-nogroup.log 2>&1
check_eq refused-without-group "$?" 1
check_eq unchanged-after-refusal "$(drv $DEV1) $(drv $DEV2)" "e1000 e1000"

# L1's side of the hub.
peer_if=$(ls "/sys/bus/pci/devices/$PEER/net" 2>/dev/null | head -n 1)
if [ -z "$peer_if" ]; then fail peer-nic "no netdev under $PEER"; fi
ip addr add 10.9.0.1/24 dev "$peer_if"
ip link set "$peer_if" up

# L2's initramfs: busybox, L1's e1000.ko (same kernel), the init.
ko=$(grep '/e1000.ko$' /lab/modules.order | head -n 1)
rm -rf /tmp/l2root && mkdir -p /tmp/l2root/bin /tmp/l2root/proc /tmp/l2root/sys /tmp/l2root/dev
cp /bin/busybox /tmp/l2root/bin/busybox
cp "/$ko" /tmp/l2root/e1000.ko
cp /lab/files/passthrough-group.l2-init /tmp/l2root/init
chmod +x /tmp/l2root/init
(cd /tmp/l2root && find . | cpio -o -H newc 2>/dev/null) >/tmp/l2-group.cpio
check_eq l2-initramfs-built "$([ -s /tmp/l2-group.cpio ] && [ -n "$ko" ] && echo yes || echo no)" yes

# L1 pings L2 while it runs.
( sleep 1; for i in $(seq 1 90); do ping -c 1 -W 1 10.9.0.2 >/dev/null 2>&1 && echo ok; sleep 1; done ) >/tmp/l1-ping.txt 2>&1 &
pinger=$!

# As in passthrough-nic: svmm in the foreground under `timeout` (SIGTERM must still reset + restore).
t0=$(cut -d' ' -f1 /proc/uptime)
timeout -s TERM 170 svmm passthrough "$DEV1" --group --kernel "$L2_KERNEL" --initrd /tmp/l2-group.cpio \
  --cmdline "console=ttyS0 panic=-1 reboot=k acpi=noirq quiet" --mem 256M --cpus 1 </dev/null >/tmp/pt-l2.log 2>&1
rc=$?
t1=$(cut -d' ' -f1 /proc/uptime)
i=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%d", b - a }')
termed=no
grep -q 'guest ended: stopped by signal' /tmp/pt-l2.log && termed=yes
echo "passthrough-group: svmm exited $rc after $i s, SIGTERM sent: $termed"
kill "$pinger" 2>/dev/null
lab_log "svmm output: $(grep -v "^\\[" /tmp/pt-l2.log | grep -v '^L2-' | tail -n 14 | tr '\n' '|')"
artifact /tmp/pt-l2.log passthrough-group-console.log
if [ "$termed" = yes ]; then fail l2-powered-off-in-time "L2 had not powered off after 170 s; svmm was stopped with SIGTERM"; fi
[ "$termed" = no ] && check_eq svmm-exit "$rc" 0

check_eq both-passed "$(grep -c -E "^svmm:   0000:05:0[12]\.0 .* as guest " /tmp/pt-l2.log)" 2
if grep -q SVMM-L2-INIT-OK /tmp/pt-l2.log; then pass l2-init-ran; else fail l2-init-ran "no marker; last lines: $(tail -n 8 /tmp/pt-l2.log | tr '\n' '|')"; fi
check_eq l2-sees-two-e1000-bound "$(grep -c '^L2-PCI 0000:00:0[0-9a-f].0 8086:100e 0x020000 e1000 ' /tmp/pt-l2.log)" 2
check_eq l2-link-up "$(grep -c '^L2-CARRIER 1 operstate up' /tmp/pt-l2.log)" 1
# INTx, level-triggered: /proc/interrupts shows the IOAPIC pin svmm announced, as "fasteoi" (Linux's
# level flow; an edge pin reads "-edge"), and the device's irq is that pin.
hub=$(grep '^L2-HUBNIC' /tmp/pt-l2.log | head -n 1 | tr -d '\r')
l2irq=$(echo "${hub##* irq }" | tr -dc '0-9')
echo "passthrough-group: $hub"
lines=$(grep '^L2-INTLINE' /tmp/pt-l2.log | head -n 1 | tr -d '\r')
case "$l2irq:$lines" in [0-9]*:*IO-APIC*"$l2irq"-fasteoi*) pass l2-intx-level-ioapic ;; *) fail l2-intx-level-ioapic "irq $l2irq, /proc/interrupts: $lines" ;; esac
if grep -q -E "GSI $l2irq, level-triggered \(MP table\)" /tmp/pt-l2.log; then pass l2-irq-is-svmm-gsi; else fail l2-irq-is-svmm-gsi "L2 irq '$l2irq' not among svmm's: $(grep 'MP table' /tmp/pt-l2.log | tr '\n' '|')"; fi
before=$(sed -n 's/^L2-IRQS-BEFORE \([0-9]*\).*/\1/p' /tmp/pt-l2.log)
after=$(sed -n 's/^L2-IRQS-AFTER \([0-9]*\).*/\1/p' /tmp/pt-l2.log)
echo "passthrough-group: INTx count before $before after $after"
if [ -n "$before" ] && [ -n "$after" ] && [ "$after" -gt "$before" ]; then pass l2-interrupts-count-up; else fail l2-interrupts-count-up "before '$before' after '$after'"; fi
got=$(sed -n 's/^L2-PING-RECEIVED \([0-9]*\).*/\1/p' /tmp/pt-l2.log)
if [ -n "$got" ] && [ "$got" -ge 3 ]; then pass l2-pings-l1; else fail l2-pings-l1 "L2 got '$got' of 5 replies from L1"; fi
l1got=$(grep -c ok /tmp/l1-ping.txt)
if [ "$l1got" -ge 3 ]; then pass l1-pings-l2; else fail l1-pings-l2 "L1 got $l1got replies from L2"; fi
check_eq pair-back-on-e1000 "$(drv $DEV1) $(drv $DEV2)" "e1000 e1000"
check_eq journal-holds-nothing "$(svmm status 2>/dev/null | grep -c 'holds nothing')" 1
note=$(grep -A6 'passthrough summary' /tmp/pt-l2.log | tr '\n' ' ')
echo "closing note: $note"
case "$note" in *"DMA backend VFIO"*"interrupts INTx (GSI "*"level-triggered)"*"reset before: "*"reset after: "*) pass closing-note ;; *) fail closing-note "missing or incomplete: $note" ;; esac
grep 'passthrough summary' -A6 /tmp/pt-l2.log >/tmp/pt-note.txt
artifact /tmp/pt-note.txt passthrough-group-closing-note.txt
