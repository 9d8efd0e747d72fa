# kubesh's live update, run in a dproc's container over exec: unpacks the
# changed files (a tar.gz on stdin) into the app directory, removes the
# deleted ones, drops the bytecode caches of the changed Python modules,
# has the supervisor restart the program, and waits until the new program
# listens on its port or exits.
# Arguments (never evaluated): RUN APP PORT N DELETED(N of them) CHANGED…
# Exit status: 0 listening, 90 no supervisor, 91 unpacking failed,
# 92 the program exited (its status on stdout), 93 not listening yet.
run=$1
app=$2
listen=$3
deleted=$4
shift 4
[ -p "$run/reload" ] || exit 90
tar -xzf - -C "$app" || exit 91
while [ "$deleted" -gt 0 ]; do
    rm -f -- "$app/$1"
    shift
    deleted=$((deleted - 1))
done
# Python keys its cached bytecode by the source's time (in seconds) and
# size: an edit in the same second that keeps the size would be served
# from the old cache.
for file in "$@"; do
    case $file in
    *.py)
        dir=$(dirname -- "$file")
        base=$(basename -- "$file" .py)
        rm -f -- "$app/$dir/__pycache__/$base".*.pyc
        ;;
    esac
done
read -r _ before _ <"$run/state"
before=${before:-0}
echo reload >"$run/reload"
port=$(printf '%04X' "${listen:-0}")
tries=0
while :; do
    state=
    generation=0
    code=
    read -r state generation code <"$run/state"
    if [ "${generation:-0}" -gt "$before" ]; then
        if [ "$state" = exited ]; then
            echo "$code"
            exit 92
        fi
        if [ "$port" = 0000 ] ||
            grep -q ":$port [0-9A-F]*:[0-9A-F]* 0A" /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
            exit 0
        fi
    fi
    tries=$((tries + 1))
    [ "$tries" -lt 1000 ] || exit 93
    sleep 0.01
done
