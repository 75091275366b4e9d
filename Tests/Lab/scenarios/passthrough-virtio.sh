#!/bin/sh
# lab-description: svmm passthrough of L1's e1000e plus --disk: L2 uses the passed-through NIC (MSI-X, pings over the hub) and svmm's virtio-blk (MSI-X over irqfds) at once; both share svmm's one GSI routing table
# lab-machine: hub-nic
# lab-needs: l2
# lab-modules: virtio_pci virtio_blk loop
# lab-timeout: 600
# lab-files: Tests/Lab/scenarios/passthrough-virtio.l2-init
# KVM_SET_GSI_ROUTING replaces the whole table, so a VM whose passed-through function and virtio
# device both route MSI-X vectors proves the table has one owner: with two, the second writer would
# erase the first one's routes and its interrupts would stop. L2 mounts the virtio disk, reads the
# known file and writes one, pings L1 through the e1000e, then reads the disk again.
# Truth: L2's own /sys and /proc/interrupts (printed by its init), L1's mount of the image afterwards,
# L1's ping counts, and L1's /sys driver link.
. /lab/lib.sh

DEV=0000:02:00.0
PEER=0000:00:06.0
drv() { basename "$(readlink "/sys/bus/pci/devices/$1/driver" 2>/dev/null)" 2>/dev/null || echo none; }
check_eq e1000e-on-e1000e-before "$(drv $DEV)" e1000e

peer_if=$(ls "/sys/bus/pci/devices/$PEER/net" 2>/dev/null | head -n 1)
if [ -z "$peer_if" ]; then fail peer-nic "no netdev under $PEER"; fi
ip addr add 10.9.0.1/24 dev "$peer_if"
ip link set "$peer_if" up

# The disk image: ext2 with a known file.
KNOWN="svmm-pt-virtio-known-$(cut -d' ' -f1 /proc/uptime)"
IMG=/tmp/pt-virtio-disk.img
known_image $IMG 16 "$KNOWN"

# L2's initramfs: busybox, e1000e, the virtio and ext4 modules of this kernel, the init.
R=/tmp/l2root
rm -rf $R && mkdir -p $R/bin $R/proc $R/sys $R/dev $R/mnt $R/tmp
cp /bin/busybox $R/bin/busybox
cp "/$(grep '/e1000e.ko$' /lab/modules.order | head -n 1)" $R/e1000e.ko
grep -E '/(virtio[a-z_]*|virtio_pci[a-z_]*|ext4|jbd2|mbcache|crc16|crc32c[a-z_]*|libcrc32c)\.ko' /lab/modules.order >$R/modules.order || true
while read -r ko; do mkdir -p "$R/$(dirname "$ko")"; cp "/$ko" "$R/$ko"; done <$R/modules.order
cp /lab/files/passthrough-virtio.l2-init $R/init
chmod 755 $R/init
(cd $R && find . | cpio -o -H newc 2>/dev/null) >/tmp/l2-ptv.cpio
check_eq l2-initramfs-has-virtio-blk "$(grep -c 'virtio_blk.ko' $R/modules.order)" 1

( sleep 1; for i in $(seq 1 90); do ping -c 1 -W 1 10.9.0.2 >/dev/null 2>&1 && echo ok; sleep 1; done ) >/tmp/l1-ping.txt 2>&1 &
pinger=$!

timeout -s TERM 150 svmm passthrough "$DEV" --disk $IMG --kernel "$L2_KERNEL" --initrd /tmp/l2-ptv.cpio \
  --cmdline "console=ttyS0 panic=-1 reboot=k acpi=noirq quiet" --mem 256M --cpus 1 </dev/null >/tmp/ptv-l2.log 2>&1
rc=$?
kill "$pinger" 2>/dev/null
artifact /tmp/ptv-l2.log passthrough-virtio-console.log
lab_log "svmm output: $(grep -v "^\\[" /tmp/ptv-l2.log | tail -n 12 | tr '\n' '|')"
check_eq svmm-exit "$rc" 0
if grep -q SVMM-L2-INIT-OK /tmp/ptv-l2.log; then pass l2-init-ran; else fail l2-init-ran "no marker; last lines: $(tail -n 8 /tmp/ptv-l2.log | tr '\n' '|')"; fi
check_eq svmm-names-virtio-blk "$(grep -c "virtio-blk on $IMG as guest 0000:00:08.0" /tmp/ptv-l2.log)" 1
check_eq l2-e1000e-bound "$(grep -c '^L2-PCI 0000:00:01.0 8086:10d3 0x020000 e1000e' /tmp/ptv-l2.log)" 1
check_eq l2-virtio-blk-bound "$(grep -c '^L2-PCI 0000:00:08.0 1af4:1042 0x018000 virtio-pci' /tmp/ptv-l2.log)" 1
check_eq l2-read-known-file "$(sed -n 's/^L2-KNOWN \(.*\)/\1/p' /tmp/ptv-l2.log | tr -d '\r')" "$KNOWN"
check_eq l2-unmounted-cleanly "$(grep -c '^L2-UMOUNT-OK' /tmp/ptv-l2.log)" 1
check_eq l2-link-up "$(grep -c '^L2-CARRIER 1 operstate up' /tmp/ptv-l2.log)" 1
got=$(sed -n 's/^L2-PING-RECEIVED \([0-9]*\).*/\1/p' /tmp/ptv-l2.log)
if [ -n "$got" ] && [ "$got" -ge 3 ]; then pass l2-pings-l1; else fail l2-pings-l1 "L2 got '$got' of 5 replies from L1"; fi
l1got=$(grep -c ok /tmp/l1-ping.txt)
if [ "$l1got" -ge 3 ]; then pass l1-pings-l2; else fail l1-pings-l2 "L1 got $l1got replies from L2"; fi
check_eq l2-disk-read-after-nic "$(grep -c '^L2-VDA-READ-AFTER-NIC ok' /tmp/ptv-l2.log)" 1
# Both devices interrupted through MSI/MSI-X, with counts above zero, in L2's own /proc/interrupts.
msi_count() { grep '^L2-INTLINE' /tmp/ptv-l2.log | grep "$1" | grep MSI | awk '{s+=$3} END {print s+0}'; }
eth=$(msi_count 'eth0\|e1000e')
vq=$(msi_count 'virtio.*req')
if [ "$eth" -gt 0 ]; then pass l2-e1000e-msi-interrupts; else fail l2-e1000e-msi-interrupts "eth0 MSI count '$eth': $(grep '^L2-INTLINE' /tmp/ptv-l2.log | tr '\n' '|')"; fi
if [ "$vq" -gt 0 ]; then pass l2-virtio-msix-interrupts; else fail l2-virtio-msix-interrupts "virtio request-queue MSI count '$vq': $(grep '^L2-INTLINE' /tmp/ptv-l2.log | tr '\n' '|')"; fi
# Truth for the disk: the image, mounted again in L1 after svmm exited.
if mount -o loop,ro -t ext2 $IMG /tmp/vd; then
  check_eq image-holds-l2-file "$(cut -d' ' -f1 /tmp/vd/new.txt 2>/dev/null)" written-by-l2
  umount /tmp/vd
else
  fail image-holds-l2-file "cannot mount the image after L2"
fi
check_eq e1000e-back-on-e1000e "$(drv $DEV)" e1000e
check_eq journal-holds-nothing "$(svmm status 2>/dev/null | grep -c 'holds nothing')" 1
