# kubesh's supervisor: the entrypoint of a background dproc's container.
# Runs the program given as its arguments in its own process group,
# restarts it when kubesh has written new files into the container (a line
# on the reload FIFO), stops it on TERM or INT and exits with the program's
# status. The arguments are never evaluated. $1 is the directory shared
# with the updates.
run=$1
shift
mkdir -p "$run" && rm -f "$run/reload" && mkfifo "$run/reload" || exit 70
# The program and all it starts, as one process group where setsid exists.
group=
command -v setsid >/dev/null 2>&1 && group=1
child=
killer=
restarting=
stopping=
# Stops the program: TERM to its group, KILL if it is still there in 5 s.
# (`kill -SIG -PGID`, without `--`, which dash's kill does not take.)
stop() {
    [ -n "$child" ] || return 0
    if [ -n "$group" ]; then
        kill -TERM "-$child" 2>/dev/null || kill -TERM "$child" 2>/dev/null
    else
        kill -TERM "$child" 2>/dev/null
    fi
    [ -n "$killer" ] && return 0
    (
        sleep 5
        kill -KILL "-$1" 2>/dev/null || kill -KILL "$1" 2>/dev/null
    ) </dev/null >/dev/null 2>&1 &
    killer=$!
}
# USR1, not HUP: a shell cannot trap a signal ignored when it started, and
# HUP often is (nohup).
trap 'restarting=1; stop "$child"' USR1
trap 'stopping=1; stop "$child"' TERM INT
(
    trap - USR1 TERM INT
    while :; do
        read -r _ <"$run/reload" && kill -USR1 $$
    done
) </dev/null >/dev/null 2>&1 &
reader=$!
generation=0
status=0
while :; do
    restarting=
    generation=$((generation + 1))
    if [ -n "$group" ]; then
        setsid "$@" &
    else
        "$@" &
    fi
    child=$!
    echo "running $generation" >"$run/state"
    # Read once the program is on its way: `date` is a process of its own.
    started=$(date +%s)
    # A reload or a stop that came while the program was being started.
    [ -z "$restarting$stopping" ] || stop "$child"
    while :; do
        wait "$child"
        status=$?
        # `wait` also returns when a signal arrives; the program may still run.
        kill -0 "$child" 2>/dev/null || break
    done
    child=
    [ -z "$killer" ] || kill "$killer" 2>/dev/null
    killer=
    echo "exited $generation $status" >"$run/state"
    [ -z "$stopping" ] || break
    if [ -n "$restarting" ]; then
        echo "kubesh: restarting the program with the new files" >&2
        continue
    fi
    # New code that ends within seconds of a reload waits for the next
    # save instead of ending the container.
    if [ "$generation" -gt 1 ] && [ $(($(date +%s) - started)) -lt 10 ]; then
        echo "kubesh: the program exited with status $status after the reload; waiting for the next save" >&2
        while [ -z "$restarting$stopping" ]; do
            sleep 86400 &
            child=$!
            [ -z "$restarting$stopping" ] || kill "$child" 2>/dev/null
            wait "$child"
            kill "$child" 2>/dev/null
            child=
        done
        [ -z "$killer" ] || kill "$killer" 2>/dev/null
        killer=
        [ -z "$stopping" ] || break
        echo "kubesh: restarting the program with the new files" >&2
        continue
    fi
    break
done
kill "$reader" 2>/dev/null
exit "$status"
