#!/usr/bin/env bash
# The rx sandbox: one master and three minions (web1, web2, db1) on 127.0.0.1,
# every file under .demo/ in the checkout, nothing needs root.
#
#   scripts/demo.sh start   stop any old sandbox, build a fresh one, accept the keys,
#                           run `rx '*' test.ping` and `rx '*' cmd.run 'uname -a'`
#   scripts/demo.sh stop    stop the sandbox daemons (by their pidfiles); keeps .demo/
#   scripts/demo.sh clean   stop, then remove .demo/ (and its short sock dir in /tmp, if any)
#
# Environment: DEMO_PUB_PORT (default 24505), DEMO_RET_PORT (default 24506),
# DEMO_DIR (default <checkout>/.demo).  Normally run through `make demo|stop|clean-demo`.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
DEMO="${DEMO_DIR:-$ROOT/.demo}"
[[ $DEMO == /* ]] || DEMO="$PWD/$DEMO"
BIN="$ROOT/.venv/bin"
PUB_PORT="${DEMO_PUB_PORT:-24505}"
RET_PORT="${DEMO_RET_PORT:-24506}"
MINIONS=(web1 web2 db1)
MARKER=".rx-demo"        # only a directory holding this file is ever deleted
MASTER_DEADLINE=15       # seconds for the master to open its sockets
KEYS_DEADLINE=30         # seconds for the minion keys to show up as pending
PING_DEADLINE=60         # seconds for every minion to answer test.ping
STOP_DEADLINE=15         # seconds a daemon gets to exit after SIGTERM
AF_UNIX_MAX=107          # longest IPC socket path the kernel accepts
LONGEST_IPC="master_event_pull.ipc"

say()  { printf '\n==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
die()  { printf '\ndemo: error: %s\n' "$*" >&2; exit 1; }

# Single-quoted YAML scalar (safe for any path).
yaml_str() { local s=${1//\'/\'\'}; printf "'%s'" "$s"; }

node_root()   { printf '%s/%s/root' "$DEMO" "$1"; }
master_pidfile() { printf '%s/var/run/rx-master.pid' "$(node_root master)"; }
master_log()  { printf '%s/var/log/rx/master' "$(node_root master)"; }
minion_log()  { printf '%s/var/log/rx/minion' "$(node_root "$1")"; }

# ---------------------------------------------------------------- stop

# Send SIGTERM to the daemon named in a pidfile; print its pid if it was signalled.
signal_daemon() {
    local pidfile=$1 name=$2 pid args
    [[ -f $pidfile ]] || return 0
    pid=$(tr -dc '0-9' <"$pidfile")
    if [[ -z $pid ]] || ! kill -0 "$pid" 2>/dev/null; then
        rm -f "$pidfile"
        note "$name: not running (removed stale pidfile)" >&2
        return 0
    fi
    args=$(ps -o args= -p "$pid" 2>/dev/null || true)
    case $args in
        *rx-master*|*rx-minion*) ;;
        *) note "$name: pid $pid is not an rx daemon ($args); leaving it alone" >&2
           rm -f "$pidfile"
           return 0 ;;
    esac
    kill -TERM "$pid" 2>/dev/null || true
    note "$name: sent SIGTERM to pid $pid" >&2
    printf '%s\n' "$pid"
}

# SIGKILL a daemon that ignored SIGTERM, with its process group (the session
# `-d` made with setsid), so no child of it is left behind.
kill_hard() {
    local pid=$1 pgid
    pgid=$(ps -o pgid= -p "$pid" 2>/dev/null | tr -dc '0-9' || true)
    echo "demo: pid $pid did not exit within ${STOP_DEADLINE}s; sending SIGKILL" >&2
    if [[ -n $pgid && $pgid != "$(ps -o pgid= -p $$ | tr -dc '0-9')" ]]; then
        kill -KILL -- "-$pgid" 2>/dev/null || true
    fi
    kill -KILL "$pid" 2>/dev/null || true
}

stop_all() {
    if [[ ! -d $DEMO ]]; then
        echo "No sandbox at $DEMO: nothing to stop."
        return 0
    fi
    local pids=() pid m f
    # Minions first, so they do not spend the master's shutdown reconnecting.
    for f in "$DEMO"/*/root/var/run/rx-minion.pid; do
        [[ -e $f ]] || continue
        m=${f#"$DEMO"/}; m=${m%%/*}
        pid=$(signal_daemon "$f" "rx-minion $m") && [[ -n $pid ]] && pids+=("$pid")
    done
    pid=$(signal_daemon "$(master_pidfile)" "rx-master") && [[ -n $pid ]] && pids+=("$pid")
    if ((${#pids[@]} == 0)); then
        echo "No sandbox daemons running."
        return 0
    fi
    local deadline=$((SECONDS + STOP_DEADLINE)) alive
    while :; do
        alive=()
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive+=("$pid"); done
        ((${#alive[@]} == 0)) && break
        if ((SECONDS >= deadline)); then
            for pid in "${alive[@]}"; do kill_hard "$pid"; done
            break
        fi
        sleep 0.2
    done
    echo "Sandbox stopped."
}

clean() {
    stop_all
    [[ -d $DEMO ]] || return 0
    [[ -f $DEMO/$MARKER ]] || die "$DEMO was not made by this script (no $MARKER in it); not removing it"
    local sock_parent=""
    [[ -f $DEMO/.sock_parent ]] && sock_parent=$(<"$DEMO/.sock_parent")
    rm -rf -- "$DEMO"
    if [[ -n $sock_parent && $sock_parent == /tmp/rx-demo-* && -d $sock_parent && -O $sock_parent ]]; then
        rm -rf -- "$sock_parent"
    fi
    echo "Removed ${DEMO#"$PWD"/}."
}

# ---------------------------------------------------------------- start

show_logs() {
    local f m files=("$(master_log)")
    for m in "${MINIONS[@]}"; do files+=("$(minion_log "$m")"); done
    for f in "${files[@]}"; do
        [[ -f $f ]] || continue
        printf '\n--- last lines of %s\n' "${f#"$PWD"/}" >&2
        tail -n 12 "$f" >&2
    done
}

STARTED=0
FINISHED=0
on_exit() {
    local rc=$?
    if ((STARTED && !FINISHED)); then
        show_logs
        printf '\ndemo: failed; stopping what was started (logs stay under %s)\n' "${DEMO#"$PWD"/}" >&2
        stop_all >&2 || true
    fi
    return "$rc"
}

write_configs() {
    local sock_dir=$1 m
    mkdir -p "$DEMO/master" "$(node_root master)"
    {
        echo "# rx sandbox master (written by scripts/demo.sh; \`make demo\` rebuilds it)"
        echo "root_dir: $(yaml_str "$(node_root master)")"
        echo "interface: 127.0.0.1"
        echo "publish_port: $PUB_PORT"
        echo "ret_port: $RET_PORT"
        echo "worker_processes: 2"
        echo "log_level: info"
        [[ -n $sock_dir ]] && echo "sock_dir: $(yaml_str "$sock_dir")   # the default under root_dir is too long for AF_UNIX"
    } >"$DEMO/master/master"
    for m in "${MINIONS[@]}"; do
        mkdir -p "$DEMO/$m" "$(node_root "$m")"
        {
            echo "# rx sandbox minion $m (written by scripts/demo.sh)"
            echo "id: $m"
            echo "root_dir: $(yaml_str "$(node_root "$m")")"
            echo "master: 127.0.0.1"
            echo "master_port: $RET_PORT"
            echo "publish_port: $PUB_PORT"
            echo "log_level: info"
        } >"$DEMO/$m/minion"
    done
}

# Pick the master's sock_dir: the default under root_dir, or a short one in /tmp
# when the checkout path would make the IPC socket paths too long.
choose_sock_dir() {
    local default="$(node_root master)/var/run/rx/master"
    local longest="$default/$LONGEST_IPC"
    if ((${#longest} <= AF_UNIX_MAX)); then
        return 0
    fi
    local parent="/tmp/rx-demo-$(id -u)-$(printf '%s' "$DEMO" | cksum | cut -d' ' -f1)"
    mkdir -p -m 0700 "$parent"
    [[ -O $parent && ! -L $parent ]] || die "$parent exists but is not a directory owned by you; remove it"
    chmod 0700 "$parent"
    printf '%s\n' "$parent" >"$DEMO/.sock_parent"
    note "the checkout path makes IPC socket paths ${#longest} bytes long (limit $AF_UNIX_MAX);" >&2
    note "using sock_dir $parent/master instead" >&2
    printf '%s/master' "$parent"
}

# Number of our minions whose key is in the given state.
count_keys() {
    local state=$1 json
    json=$(rx-key -L --out json 2>/dev/null) || { echo 0; return 0; }
    printf '%s' "$json" | "$BIN/python" -c '
import json, sys
keys = json.load(sys.stdin).get(sys.argv[1], [])
print(len(set(sys.argv[2:]) & set(keys)))' "$state" "${MINIONS[@]}"
}

# Ids (space-separated) that answered True in an `rx --out json` document on stdin.
answered_true() {
    "$BIN/python" -c '
import json, sys
try:
    data = json.load(sys.stdin)
except ValueError:
    data = {}
print(" ".join(sorted(k for k, v in data.items() if v is True)))'
}

# Print a command the way you would type it, then run it.
run_shown() {
    local a shown=""
    for a in "$@"; do
        if [[ $a =~ ^[A-Za-z0-9_./,=:@%+-]+$ ]]; then shown+=" $a"; else shown+=" '${a//\'/\'\\\'\'}'"; fi
    done
    printf '\n$%s\n' "$shown"
    "$@"
}

start() {
    [[ -x $BIN/rx-master ]] || die "no $BIN/rx-master: run \`make demo\` (it creates .venv first)"
    [[ $PUB_PORT =~ ^[0-9]+$ && $RET_PORT =~ ^[0-9]+$ ]] || die "DEMO_PUB_PORT and DEMO_RET_PORT must be port numbers"

    if [[ -d $DEMO ]]; then
        say "Stopping and removing the previous sandbox"
        clean
    fi

    say "Building the sandbox in ${DEMO#"$PWD"/}/ (master on 127.0.0.1:$PUB_PORT/$RET_PORT, minions ${MINIONS[*]})"
    mkdir -p "$DEMO"
    touch "$DEMO/$MARKER"
    local sock_dir
    sock_dir=$(choose_sock_dir)
    write_configs "$sock_dir"
    [[ -n $sock_dir ]] || sock_dir="$(node_root master)/var/run/rx/master"

    export PATH="$BIN:$PATH"
    export RX_CONFIG_DIR="$DEMO/master"
    trap on_exit EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP
    STARTED=1

    say "Starting rx-master -d"
    if ! rx-master -c "$DEMO/master" -d; then
        STARTED=0
        die "rx-master did not start (see the line above). If a port is taken, pick others:
    make demo DEMO_PUB_PORT=34505 DEMO_RET_PORT=34506"
    fi
    local deadline=$((SECONDS + MASTER_DEADLINE))
    until [[ -S $sock_dir/master_req.ipc && -S $sock_dir/master_event_pub.ipc && -f $(master_pidfile) ]]; do
        ((SECONDS < deadline)) || die "rx-master did not open its sockets in $sock_dir within ${MASTER_DEADLINE}s"
        sleep 0.2
    done
    note "rx-master running, pid $(<"$(master_pidfile)")"

    say "Starting ${#MINIONS[@]} minions: rx-minion -d"
    local m
    for m in "${MINIONS[@]}"; do
        rx-minion -c "$DEMO/$m" -d || die "rx-minion $m did not start (see the line above)"
    done

    say "Waiting for the ${#MINIONS[@]} minion keys to arrive (rx-key -L)"
    local n=0 last=-1
    deadline=$((SECONDS + KEYS_DEADLINE))
    while :; do
        n=$(count_keys pending)
        ((n != last)) && note "pending: $n/${#MINIONS[@]}" && last=$n
        ((n >= ${#MINIONS[@]})) && break
        ((SECONDS < deadline)) || die "only $n of ${#MINIONS[@]} minion keys arrived within ${KEYS_DEADLINE}s"
        sleep 0.5
    done
    run_shown rx-key -L

    say "Accepting them (in real life: compare each fingerprint from \`rx-key -F\` with the minion's log first)"
    run_shown rx-key -A -y

    say "Waiting for every minion to authenticate and answer (rx '*' test.ping -t 2 --out json)"
    local out got="" prev=""
    deadline=$((SECONDS + PING_DEADLINE))
    while :; do
        out=$(rx '*' test.ping -t 2 --out json 2>"$DEMO/.ping.err") || true
        got=$(printf '%s' "$out" | answered_true)
        [[ $got != "$prev" ]] && note "answered: ${got:-none yet}" && prev=$got
        [[ $(wc -w <<<"$got") -ge ${#MINIONS[@]} ]] && break
        if ((SECONDS >= deadline)); then
            cat "$DEMO/.ping.err" >&2 || true
            die "not every minion answered within ${PING_DEADLINE}s (answered: ${got:-none})"
        fi
        sleep 0.5
    done
    rm -f "$DEMO/.ping.err"

    say "The sandbox works:"
    run_shown rx '*' test.ping
    run_shown rx '*' cmd.run 'uname -a'
    FINISHED=1

    local venv_q cfg_q
    venv_q=$(printf '%q' "$ROOT/.venv/bin/activate")
    cfg_q=$(printf '%q' "$DEMO/master")
    cat <<EOF

==> The sandbox keeps running. To use it from your shell:

    . $venv_q
    export RX_CONFIG_DIR=$cfg_q
    rx '*' test.ping
    rx -L web1,db1 grains.item os num_cpus
    rx 'web*' cmd.run 'id -un' --out json
    rx-key -L
    rx-run jobs.list_jobs

    Configs:  ${DEMO#"$PWD"/}/master/master, ${DEMO#"$PWD"/}/{web1,web2,db1}/minion
    Logs:     ${DEMO#"$PWD"/}/master/root/var/log/rx/master, ${DEMO#"$PWD"/}/<minion>/root/var/log/rx/minion

Stop it with \`make stop\`; \`make clean-demo\` also removes ${DEMO#"$PWD"/}/.
EOF
}

case "${1:-}" in
    start) start ;;
    stop)  stop_all
           if [[ -d $DEMO ]]; then echo "Files kept in ${DEMO#"$PWD"/}/ (\`make demo\` rebuilds it, \`make clean-demo\` removes it)."; fi ;;
    clean) clean ;;
    *) echo "usage: $0 start|stop|clean" >&2; exit 2 ;;
esac
