# /lab/lib.sh: the lab contract's guest side. Source it with `. /lab/lib.sh`.
#   pass NAME                 one passing assertion
#   fail NAME REASON...       one failing assertion with a one-line reason
#   check_eq NAME GOT WANT    pass if GOT = WANT, else fail saying both
#   artifact FILE [NAME]      ship FILE to the host's per-run artifacts dir (as NAME)
#   lab_wait SECONDS CMD...   retry CMD every 0.2 s until it succeeds or time runs out
#   lab_log MSG               a console line marked as the lab's
# With `# lab-needs: l2`: l2_run, l2_boot (see the L2 section below).
# Results and artifacts go over ttyS1 (the protocol channel), never the console, so
# kernel messages cannot tear them; PASS/FAIL lines are echoed to the console too.

LAB_PROTO=${LAB_PROTO:-/dev/ttyS1}

lab_send() { printf '%s\n' "$*" >"$LAB_PROTO"; }
lab_log() { echo "lab: $*"; }
_lab_oneline() { printf '%s' "$*" | tr '\n\r\t' '   '; }

pass() {
  echo "PASS $1"
  lab_send "PASS $1"
}

fail() {
  _n=$1; shift
  _r=$(_lab_oneline "$*")
  [ -n "$_r" ] || _r="(no reason given)"
  echo "FAIL $_n: $_r"
  lab_send "FAIL $_n: $_r"
}

check_eq() {
  if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "got '$2', want '$3'"; fi
}

artifact() {
  _f=$1; _a=${2:-$(basename "$1")}
  case $_a in ''|.*|*/*|*' '*) fail "artifact" "bad artifact name '$_a'"; return 1 ;; esac
  if [ ! -f "$_f" ]; then fail "artifact-$_a" "cannot ship $_f: not a file"; return 1; fi
  _size=$(wc -c <"$_f")
  _sum=$(sha256sum "$_f" | cut -d' ' -f1)
  { echo "ARTIFACT-BEGIN $_a $_size $_sum"; base64 "$_f"; echo "ARTIFACT-END $_a"; } >"$LAB_PROTO"
}

# The lab's usb-storage stick (46f4:0001) as L1 sees it: lab_usb_stick prints its USB device name
# (e.g. 2-3); lab_usb_disk_of NAME the block device behind its first interface; lab_usb_stick_ready
# (for lab_wait) is true once both exist, and leaves the name in $dev.
lab_usb_stick() {
  for _u in /sys/bus/usb/devices/*; do
    [ -f "$_u/idVendor" ] && [ "$(cat "$_u/idVendor"):$(cat "$_u/idProduct")" = 46f4:0001 ] && { echo "${_u##*/}"; return 0; }
  done
  return 1
}
lab_usb_disk_of() { for _b in /sys/bus/usb/devices/$1:1.0/host*/target*/*/block/*; do [ -e "$_b" ] && { echo "${_b##*/}"; return 0; }; done; return 1; }
lab_usb_stick_ready() { dev=$(lab_usb_stick) && lab_usb_disk_of "$dev" >/dev/null; }

lab_wait() {
  _t=$1; shift
  _end=$(( $(cut -d. -f1 /proc/uptime) + _t ))
  while ! "$@" >/dev/null 2>&1; do
    [ "$(cut -d. -f1 /proc/uptime)" -ge "$_end" ] && return 1
    usleep 200000
  done
}

# ---- L2: a guest inside this guest, through L1's nested /dev/kvm (kvm-amd) ------------
# Present with `# lab-needs: l2`: QEMU (+ libs, firmware) and this same kernel.
#   L2_KERNEL, L2_INITRD     the L2 kernel and a tiny initramfs whose init prints
#   L2_MARKER                this marker, then one `L2-PCI addr vid:did class driver` line per
#                            PCI function and `L2-DONE`, then powers off
#   l2_run SECS LOG CMD...   run any VMM command with a hard timeout, console to LOG;
#                            returns its status (124/137 on timeout)
#   l2_boot SECS LOG [ARGS]  the reference VMM: QEMU -enable-kvm booting L2, extra QEMU ARGS
#                            appended (e.g. -device vfio-pci,host=0000:02:00.0)
#   l2_saw_marker LOG        whether L2's init ran
L2_KERNEL=/lab/l2/vmlinuz
L2_INITRD=/lab/l2/initrd
L2_MARKER=SVMM-L2-INIT-OK
L2_APPEND='console=ttyS0 panic=-1 quiet'

l2_run() {
  _t=$1; _log=$2; shift 2
  timeout -s KILL "$_t" "$@" </dev/null >"$_log" 2>&1
}

l2_boot() {
  _t=$1; _log=$2; shift 2
  l2_run "$_t" "$_log" qemu-system-x86_64 -enable-kvm -cpu host -m 256 -smp 1 \
    -display none -vga none -monitor none -serial stdio -no-reboot -nic none \
    -kernel "$L2_KERNEL" -initrd "$L2_INITRD" -append "$L2_APPEND" "$@"
}

l2_saw_marker() { grep -q "$L2_MARKER" "$1"; }

# known_image IMG MIB TEXT: a fresh ext2 image of MIB MiB holding known.txt = TEXT (the virtio
# scenarios' disk). Fails `mke2fs` or `loop-mount` when L1 cannot make it.
known_image() {
  dd if=/dev/zero of="$1" bs=1M count="$2" 2>/dev/null
  mke2fs -q -F "$1" >/tmp/mke2fs.log 2>&1 || fail mke2fs "$(cat /tmp/mke2fs.log)"
  mkdir -p /tmp/vd
  if mount -o loop -t ext2 "$1" /tmp/vd; then
    echo "$3" >/tmp/vd/known.txt
    umount /tmp/vd
  else
    fail loop-mount "cannot loop-mount the fresh image in L1"
  fi
}
