# kubesh's live update, run in a dproc's container over exec. It is
# started as soon as a save begins, and waits on stdin for the files once
# they have settled: a header line "DELETED CHANGED FORMAT SIZE", the names
# of the deleted then the changed files (one a line), then SIZE bytes of
# the changed files as a tar (FORMAT tar) or a tar.gz (tgz). It unpacks
# them into the app directory, removes the deleted ones, drops the
# bytecode caches of the changed Python modules, has the supervisor
# restart the program, and waits until the new program listens on its
# port or exits. It never waits for its stdin to end (tar would read to
# the end of its input): kubesh leaves it open, as over the older exec
# protocol closing stdin closes the whole connection, status included.
# Only shell builtins run while it waits: no process competes with the
# program's start but `sleep`.
# Arguments (never evaluated): RUN APP PORT (four hex digits, as
# /proc/net/tcp writes it; 0000 for none).
# Exit status: 0 listening, 90 no supervisor, 91 unpacking failed,
# 92 the program exited (its status on stdout), 93 not listening yet,
# 94 nothing came (the reload was called off).
run=$1
app=$2
port=$3
[ -p "$run/reload" ] || exit 90
read -r deleted changed format size || exit 94
set --
names=$((deleted + changed))
while [ "$names" -gt 0 ]; do
    IFS= read -r name || exit 91
    set -- "$@" "$name"
    names=$((names - 1))
done
if [ "$format" = tgz ]; then
    head -c "$size" | tar -xzf - -C "$app" || exit 91
else
    head -c "$size" | tar -xf - -C "$app" || exit 91
fi
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
        dir=.
        case $file in */*) dir=${file%/*} ;; esac
        base=${file##*/}
        for cache in "$app/$dir/__pycache__/${base%.py}".*.pyc; do
            [ ! -e "$cache" ] || rm -f -- "$cache"
        done
        ;;
    esac
done
read -r _ before _ <"$run/state"
before=${before:-0}
echo reload >"$run/reload"
# Whether a socket listens on $port: read from the kernel's tables with
# the shell's own `read`.
listening() {
    for table in /proc/net/tcp /proc/net/tcp6; do
        [ -r "$table" ] || continue
        while read -r _ address _ socket _; do
            [ "$socket" = 0A ] && [ "${address##*:}" = "$port" ] && return 0
        done <"$table"
    done
    return 1
}
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
        if [ "$port" = 0000 ] || listening; then
            exit 0
        fi
    fi
    tries=$((tries + 1))
    [ "$tries" -lt 1000 ] || exit 93
    sleep 0.01
done
