# svmm-assign.sh: what assign-nic and assign-gpu share (sourced, not run). POSIX sh + jq.
#
# The model: find out what the host looks like (svmm list/bind --dry-run, JSON), refuse early with
# the reason, let svmm change bindings (its journal makes every change reversible), and on the way
# out (normal exit, error, SIGINT, SIGTERM) check that every function we planned to move is back on
# the driver it had when we started, finishing the job with svmm restore/unbind if svmm could not.
#
# Environment: SVMM (the svmm binary, default: svmm on PATH), SVMM_ROOT (passed on to svmm; the
# script's own sysfs reads go below it too, so a captured tree works like the live host).

SVMM=${SVMM:-svmm}
ROOT=${SVMM_ROOT:-}
[ "$ROOT" = / ] && ROOT=
PROG=${0##*/}
TMP=
MOVED=          # "ADDRESS FROM-DRIVER" lines of the plan (FROM is "none" when unbound)
BOUND_BY_US=    # set when this script ran svmm bind itself (command mode)
CHILD=
RESTORE_CHECKED=

say() { printf '%s: %s\n' "$PROG" "$*" >&2; }

# refuse REASON...: exit 1 with the reason; nothing has been changed at this point. (The scratch
# directory is removed here rather than by an EXIT trap set early: in the lab's busybox ash, traps
# set in need() were followed by a corrupted function body in some runs.)
refuse() { say "refused: $*"; [ -n "$TMP" ] && rm -rf "$TMP"; exit 1; }

usage_error() { say "$*"; say "see: $PROG --help"; [ -n "$TMP" ] && rm -rf "$TMP"; exit 2; }

need() {
    command -v jq >/dev/null 2>&1 || { say "needs jq (apt install jq)"; exit 2; }
    command -v "$SVMM" >/dev/null 2>&1 || { say "svmm not found (set SVMM=/path/to/svmm)"; exit 2; }
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/$PROG.XXXXXX") || exit 2
}

# driver_of ADDRESS: the bound driver's name, or "none".
driver_of() {
    d=$(readlink "$ROOT/sys/bus/pci/devices/$1/driver" 2>/dev/null) || { echo none; return; }
    echo "${d##*/}"
}

# device_json ADDRESS: the function's object from `svmm list --json` (address given long or short).
device_json() {
    jq -c --arg a "$1" '.devices[] | select(.address == $a or .address == ("0000:" + $a))' "$TMP/list.json"
}

# plan ARGS...: `svmm bind --dry-run --json ARGS`; refuses with svmm's reasons. Sets MOVED.
plan() {
    "$SVMM" bind --dry-run --json "$@" >"$TMP/plan.json" 2>"$TMP/plan.err"
    rc=$?
    if [ "$rc" -ne 0 ]; then
        if jq -e '.result == "refused"' "$TMP/plan.json" >/dev/null 2>&1; then
            jq -r '.plan.refusals[] | "  \(.address) \(.id): \(.reason)\n    fix: \(.fix // "-")"' "$TMP/plan.json" >&2
            refuse "svmm bind refused the plan (checks above)"
        fi
        cat "$TMP/plan.err" >&2
        refuse "svmm bind --dry-run failed (exit $rc)"
    fi
    MOVED=$(jq -r '.plan.moves[] | "\(.address) \(.from // "none")"' "$TMP/plan.json")
    [ -n "$MOVED" ] || refuse "nothing to move: every function is already on vfio-pci (use svmm run --device)"
    say "plan:"
    jq -r '.plan.moves[] | "  \(.address): \(.from // "no driver") -> \(.to) (\(.reason))"' "$TMP/plan.json" >&2
    jq -r '.plan.skipped[] | "  \(.address): left on \(.driver // "no driver") (\(.reason))"' "$TMP/plan.json" >&2
}

moved_addresses() { printf '%s\n' "$MOVED" | while read -r a _; do [ -n "$a" ] && printf '%s ' "$a"; done; }

# as_found: 0 when every planned function is on its original driver again; lists the others.
as_found() {
    ok=0
    for a in $(moved_addresses); do
        want=$(printf '%s\n' "$MOVED" | while read -r x f; do [ "$x" = "$a" ] && echo "$f"; done)
        now=$(driver_of "$a")
        if [ "$now" != "$want" ]; then
            say "$a is on $now, was on $want"
            ok=1
        fi
    done
    return $ok
}

# cleanup (EXIT trap): return what we bound, then make sure the host is as we found it.
cleanup() {
    status=$?
    trap - EXIT INT TERM
    if [ -n "$BOUND_BY_US" ]; then
        # shellcheck disable=SC2046
        "$SVMM" unbind --yes $(moved_addresses) >&2 || say "svmm unbind failed; checking what is left"
    fi
    if [ -n "$MOVED" ] && [ -n "$RESTORE_CHECKED" ] && ! as_found 2>/dev/null; then
        say "the host is not as found: finishing with svmm restore"
        "$SVMM" restore >&2
        # Still held (e.g. svmm was SIGKILLed after its bind committed): return exactly ours.
        held=$("$SVMM" status --json 2>/dev/null | jq -r '.held[].address' 2>/dev/null)
        mine=
        for a in $(moved_addresses); do
            case " $(echo $held) " in *" $a "*) mine="$mine $a" ;; esac
        done
        # shellcheck disable=SC2086
        [ -n "$mine" ] && "$SVMM" unbind --yes $mine >&2
        if ! as_found; then
            say "error: could not return every function to its original driver; see svmm status"
            status=1
        fi
    fi
    [ -n "$RESTORE_CHECKED" ] && [ -n "$MOVED" ] && as_found 2>/dev/null && say "host as found: $(moved_addresses)back on their original drivers"
    [ -n "$TMP" ] && rm -rf "$TMP"
    exit "$status"
}

on_signal() {
    say "got SIG$1: stopping the VM, then restoring"
    # svmm passthrough (or the VMM) gets SIGTERM and restores before it exits; wait for it.
    [ -n "$CHILD" ] && kill -TERM "$CHILD" 2>/dev/null && wait "$CHILD"
    CHILD=
    [ "$1" = INT ] && exit 130
    exit 143
}

# run_vm MODE PASSTHROUGH-FLAGS -- ARGS...: MODE "passthrough" runs `svmm passthrough FLAGS ARGS`
# (svmm binds, boots, restores); MODE "command" binds with svmm bind FLAGS, runs ARGS (any VMM),
# and unbinds on the way out. Returns the VM's exit status.
run_vm() {
    mode=$1
    flags=$2
    shift 2
    RESTORE_CHECKED=1
    trap cleanup EXIT
    trap 'on_signal INT' INT
    trap 'on_signal TERM' TERM
    if [ "$mode" = command ]; then
        # shellcheck disable=SC2086
        "$SVMM" bind --yes $flags >&2 || refuse "svmm bind failed (it rolled back; see above)"
        BOUND_BY_US=1
        say "bound: $(moved_addresses)- running: $*"
        "$@" &
    else
        # shellcheck disable=SC2086
        "$SVMM" passthrough $flags "$@" &
    fi
    CHILD=$!
    wait "$CHILD"
    vm=$?
    CHILD=
    return $vm
}

# passthrough_available: whether this svmm has the passthrough command.
# (An unknown subcommand's --help prints svmm's own help, so look for the command's usage line.)
passthrough_available() { "$SVMM" passthrough --help 2>/dev/null | grep -q '^USAGE: svmm passthrough'; }
