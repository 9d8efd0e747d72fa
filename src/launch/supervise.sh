# kubesh's supervisor: the entrypoint of a background dproc's container.
# Runs the program given as its arguments, restarts it when kubesh has
# written new files into the container (a line on the reload FIFO), passes
# TERM and INT through and exits with the program's status. The arguments
# are never evaluated. $1 is the directory shared with the updates.
run=$1
shift
mkdir -p "$run" && rm -f "$run/reload" && mkfifo "$run/reload" || exit 70
child=
restarting=
stopping=
trap 'restarting=1; [ -z "$child" ] || kill -TERM "$child" 2>/dev/null' HUP
trap 'stopping=1; [ -z "$child" ] || kill -TERM "$child" 2>/dev/null' TERM
trap 'stopping=1; [ -z "$child" ] || kill -INT "$child" 2>/dev/null' INT
(
    trap - HUP TERM INT
    while :; do
        read -r _ <"$run/reload" && kill -HUP $$
    done
) </dev/null >/dev/null 2>&1 &
reader=$!
generation=0
status=0
while :; do
    restarting=
    generation=$((generation + 1))
    started=$(date +%s)
    "$@" <&0 &
    child=$!
    echo "running $generation" >"$run/state"
    # A reload or a stop that came while the program was being started.
    if [ -n "$restarting" ] || [ -n "$stopping" ]; then
        kill -TERM "$child" 2>/dev/null
    fi
    while :; do
        wait "$child"
        status=$?
        # `wait` also returns when a signal arrives; the program may still run.
        kill -0 "$child" 2>/dev/null || break
    done
    child=
    echo "exited $generation $status" >"$run/state"
    [ -z "$stopping" ] || break
    if [ -n "$restarting" ]; then
        echo "kubesh: restarting the program with the new files" >&2
        continue
    fi
    # New code that fails within seconds of a reload waits for the next
    # save instead of ending the container.
    if [ "$generation" -gt 1 ] && [ "$status" -ne 0 ] &&
        [ $(($(date +%s) - started)) -lt 10 ]; then
        echo "kubesh: the program exited with status $status after the reload; waiting for the next save" >&2
        while [ -z "$restarting" ] && [ -z "$stopping" ]; do
            sleep 86400 &
            child=$!
            wait "$child"
            kill "$child" 2>/dev/null
            child=
        done
        [ -z "$stopping" ] || break
        echo "kubesh: restarting the program with the new files" >&2
        continue
    fi
    break
done
kill "$reader" 2>/dev/null
exit "$status"
