#!/bin/sh
# lab-description: svmm usb list/describe --json agree with /sys/bus/usb on the keyboard, tablet and usb-storage
# lab-machine: standard
# lab-timeout: 120
# Truth is read here by plain shell from the live /sys/bus/usb (the kernel's view,
# including its cached raw descriptors) and shipped next to svmm's JSON;
# usb-inventory.host compares them. svmm reads the devices through libusb
# (usbfs control transfers), so the two sources are independent.
. /lab/lib.sh
W=/tmp/usb-inventory
mkdir -p $W

# USB enumerates a moment after xhci loads: wait for the three devices.
_usb_ready() {
  n=0
  for d in /sys/bus/usb/devices/*/idVendor; do
    [ -f "$d" ] && [ "$(cat "$d")" != 1d6b ] && n=$((n + 1))
  done
  [ "$n" -ge 3 ]
}
lab_wait 10 _usb_ready || lab_log "fewer than 3 USB devices after 10s"

# --- truth: "NAME ATTR VALUE" for every USB device and interface attribute we compare.
for d in /sys/bus/usb/devices/*; do
  n=${d##*/}
  case $n in
  *:*) # an interface
    for a in bInterfaceNumber bAlternateSetting bInterfaceClass bInterfaceSubClass bInterfaceProtocol bNumEndpoints; do
      [ -f "$d/$a" ] && echo "$n $a $(cat "$d/$a")"
    done
    drv=none; [ -L "$d/driver" ] && drv=$(basename "$(readlink "$d/driver")")
    echo "$n driver $drv"
    eps=""
    for e in "$d"/ep_*; do [ -d "$e" ] && eps="$eps ${e##*/ep_}"; done
    echo "$n endpoints$eps"
    ;;
  *) # a device
    for a in busnum devnum devpath idVendor idProduct speed version bNumConfigurations bMaxPacketSize0 bDeviceClass manufacturer product serial; do
      [ -f "$d/$a" ] && echo "$n $a $(cat "$d/$a")"
    done
    # The kernel's cached descriptors: the 18-byte device descriptor, then every
    # configuration as the device sent it (little-endian, bus order).
    echo "$n descriptors $(od -An -tx1 -v "$d/descriptors" | tr -d ' \n')"
    ;;
  esac
done >$W/truth-usb.txt

storage=""
for d in /sys/bus/usb/devices/*; do
  [ -f "$d/idVendor" ] && [ "$(cat "$d/idVendor"):$(cat "$d/idProduct")" = 46f4:0001 ] && storage=${d##*/}
done
check_eq machine-usb-storage-present "$([ -n "$storage" ] && echo yes || echo no)" yes
check_eq machine-usb-devnodes "$([ -d /dev/bus/usb ] && echo yes || echo no)" yes

# --- svmm, as a user would run it.
run() { # run NAME ARGS...: stdout to NAME.json, stderr to NAME.err, status to NAME.rc
  _n=$1; shift
  svmm "$@" >$W/$_n.json 2>$W/$_n.err
  echo $? >$W/$_n.rc
  echo "svmm $* -> exit $(cat $W/$_n.rc)"
}
run list usb list --json
run describe-vidpid usb describe 46f4:0001 --json
if [ -n "$storage" ]; then
  d=/sys/bus/usb/devices/$storage
  run describe-port usb describe "$(cat $d/busnum)-$(cat $d/devpath)" --json
  run describe-busaddr usb describe "$(cat $d/busnum):$(cat $d/devnum)" --json
fi
run describe-ambiguous usb describe 0627:0001 --json
run describe-bad usb describe 46f4:zz --json
# The human-readable forms: shown on the console for whoever reads the log.
svmm usb list >$W/list-text.txt 2>&1
check_eq list-text-exit $? 0
echo "svmm usb list:"; cat $W/list-text.txt
svmm usb describe 46f4:0001 >$W/describe-text.txt 2>&1
check_eq describe-text-exit $? 0
echo "svmm usb describe 46f4:0001:"; cat $W/describe-text.txt

for f in $W/*; do artifact "$f"; done
