#!/bin/sh
# lab-description: runner self-test: a guest allowed two boots that reboots every time
# lab-machine: standard
# lab-timeout: 240
# lab-boots: 2
# Every boot reports, then reboots at once: the runner keeps both boots' results and stops the
# guest when it comes up a third time (it would otherwise loop until the timeout).
. /lab/lib.sh
pass booted
reboot -f
sleep 60
