#!/bin/sh
# lab-description: runner self-test: a guest that cannot finish inside its timeout
# lab-machine: standard
# lab-timeout: 5
# Five seconds is less than the boot takes, so the runner must kill QEMU and say why.
. /lab/lib.sh
sleep 600
pass unreachable
