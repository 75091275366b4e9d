#!/bin/sh
# lab-description: svmm run --disk IMAGE --net tap=NAME boots L2; L2 mounts the virtio disk, reads a known file, writes one the image keeps; L2 and L1 ping over the TAP
# lab-machine: standard
# lab-needs: l2
# lab-modules: virtio_pci virtio_blk virtio_net loop tun
# lab-files: Tests/Lab/scenarios/virtio.l2-init
# lab-timeout: 600
# L1 builds the disk image (ext2, with a known file, through a loop mount) and an L2 initramfs of
# its own: busybox, the virtio/ext4 modules of this same kernel and an init that mounts /dev/vda,
# prints what it read, writes new.txt, configures eth0 and pings L1 over the TAP, then powers off.
# Truth is checked in L1 afterwards by mounting the image again. Addresses 10.77.0.0/24 exist only
# on the TAP link.
. /lab/lib.sh
check_eq kvm-node "$([ -c /dev/kvm ] && echo present || echo absent)" present

KNOWN="svmm-virtio-known-$(cut -d' ' -f1 /proc/uptime)"
IMG=/tmp/virtio-disk.img
known_image $IMG 32 "$KNOWN"

# The L2 initramfs: busybox + modules + init.
R=/tmp/l2root
mkdir -p $R/bin $R/proc $R/sys $R/dev $R/mnt $R/tmp
cp /bin/busybox $R/bin/busybox
ver=$(uname -r)
grep -E '/(virtio[a-z_]*|virtio_pci[a-z_]*|ext4|jbd2|mbcache|crc16|crc32c[a-z_]*|libcrc32c|failover|net_failover)\.ko' /lab/modules.order >$R/modules.order || true
while read -r ko; do mkdir -p "$R/$(dirname "$ko")"; cp "/$ko" "$R/$ko"; done <$R/modules.order
# L2's /init is a repository file (lab-files), not a here-document: busybox ash in the lab
# sometimes mis-parsed the here-document's nested $(...) (seen: `"$(readlink` became `}link`
# in both copies written by one shell), so the text must not pass through the shell's parser.
cp /lab/files/virtio.l2-init $R/init
check_eq l2-init-is-the-repository-file "$(md5sum <$R/init | cut -d' ' -f1)" "$(md5sum </lab/files/virtio.l2-init | cut -d' ' -f1)"
artifact $R/init l2-init.sh
chmod 755 $R/init
INIT_SUM=$(md5sum $R/init | cut -d' ' -f1)
(cd $R && find . | cpio -o -H newc >/tmp/l2-virtio.cpio 2>/dev/null)
check_eq l2-initramfs-has-virtio-blk "$(grep -c 'virtio_blk.ko' $R/modules.order)" 1

TAP=svmmtap0
: >/tmp/svmm-virtio.log
# svmm runs in the background and is polled (as vmm-boot does; see Docs/VMM.md).
svmm run --kernel "$L2_KERNEL" --initrd /tmp/l2-virtio.cpio \
  --cmdline "console=ttyS0 panic=-1 reboot=k acpi=noirq quiet" --mem 256M --cpus 1 \
  --disk $IMG --net tap=$TAP </dev/null >/tmp/svmm-virtio.log 2>&1 &
svmm_pid=$!
# L2's console, live on L1's console (so a hang still shows how far L2 got).
tail -f /tmp/svmm-virtio.log >/dev/console 2>/dev/null &
tail_pid=$!
# L1's end of the TAP link: svmm creates the TAP; address it as soon as it exists.
n=0; while [ ! -e /sys/class/net/$TAP ] && [ $n -lt 300 ] && [ -d /proc/$svmm_pid ]; do sleep 0.2; n=$((n+1)); done
if [ -e /sys/class/net/$TAP ]; then
  ip addr add 10.77.0.1/24 dev $TAP && ip link set $TAP up
else
  lab_log "the TAP $TAP never appeared"
fi
waited=0
while [ -d /proc/$svmm_pid ] && [ "$(cut -d' ' -f3 /proc/$svmm_pid/stat 2>/dev/null)" != Z ] && [ $waited -lt 300 ]; do
  sleep 1
  waited=$((waited + 1))
done
if [ -d /proc/$svmm_pid ] && [ "$(cut -d' ' -f3 /proc/$svmm_pid/stat 2>/dev/null)" != Z ]; then
  echo "virtio: svmm still running after ${waited}s; killing it"
  kill -9 $svmm_pid
fi
wait $svmm_pid
rc=$?
kill $tail_pid 2>/dev/null
artifact /tmp/svmm-virtio.log svmm-virtio-console.log
check_eq svmm-exit-status "$rc" 0
if l2_saw_marker /tmp/svmm-virtio.log; then pass l2-init-marker; else fail l2-init-marker "last lines: $(tail -n 5 /tmp/svmm-virtio.log)"; fi
check_eq l2-virtio-blk-bound "$(grep -c '^L2-PCI .* 1af4:1042 0x018000 virtio-pci' /tmp/svmm-virtio.log)" 1
check_eq l2-disk-size-sectors "$(sed -n 's/^L2-VDA-SIZE \([0-9]*\).*/\1/p' /tmp/svmm-virtio.log | tr -d '\r')" 65536
check_eq l2-read-known-file "$(sed -n 's/^L2-KNOWN \(.*\)/\1/p' /tmp/svmm-virtio.log | tr -d '\r')" "$KNOWN"
check_eq l2-unmounted-cleanly "$(grep -c '^L2-UMOUNT-OK' /tmp/svmm-virtio.log)" 1
# Truth: the image, mounted again in L1 after svmm exited.
if mount -o loop,ro -t ext2 $IMG /tmp/vd; then
  got=$(cut -d' ' -f1 /tmp/vd/new.txt 2>/dev/null)
  check_eq image-holds-l2-file "$got" written-by-l2
  check_eq image-keeps-known-file "$(cat /tmp/vd/known.txt)" "$KNOWN"
  umount /tmp/vd
else
  fail image-holds-l2-file "cannot mount the image after L2"
fi
check_eq l2-virtio-net-bound "$(grep -c '^L2-PCI .* 1af4:1041 0x020000 virtio-pci' /tmp/svmm-virtio.log)" 1
check_eq l2-pings-l1-over-tap "$(grep -c '^L2-PING-OK' /tmp/svmm-virtio.log)" 1
# Diagnostics: L2's copy of its own /init, checksummed at start and end, against L1's.
check_eq l2-init-intact-at-start "$(sed -n 's/^L2-INIT-SUM-START \([0-9a-f]*\).*/\1/p' /tmp/svmm-virtio.log)" "$INIT_SUM"
check_eq l2-init-intact-at-end "$(sed -n 's/^L2-INIT-SUM-END \([0-9a-f]*\).*/\1/p' /tmp/svmm-virtio.log)" "$INIT_SUM"
