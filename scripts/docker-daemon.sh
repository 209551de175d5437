#!/usr/bin/env bash
# A Docker daemon of the project's own, for the deployment test on machines without one:
# Debian's dockerd as root, without a bridge network or iptables rules (containers use the
# host's network), with its own socket, state and data directories, so it neither needs nor
# touches a system daemon. Images stay in the data directory between runs (the build cache).
#
#   scripts/docker-daemon.sh start    # prints DOCKER_HOST=unix://...; exit 0 once it answers
#   scripts/docker-daemon.sh stop     # stops it (and the containerd it started)
#   scripts/docker-daemon.sh status   # exit 0 if running
set -euo pipefail
# dockerd and debootstrap live in sbin, which a non-login PATH may lack.
export PATH="$PATH:/usr/sbin:/sbin"

RUN_DIR=${TRIVIA_DOCKER_RUN_DIR:-/run/trivia-docker}
DATA_DIR=${TRIVIA_DOCKER_DATA_DIR:-/var/lib/trivia-docker}
SOCKET="$RUN_DIR/docker.sock"
PIDFILE="$RUN_DIR/dockerd.pid"
LOG="$RUN_DIR/dockerd.log"
export DOCKER_HOST="unix://$SOCKET"

running() {
    [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

answers() {
    docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

case "${1:-}" in
    start)
        command -v dockerd >/dev/null || { echo "dockerd not found (apt-get install docker.io)" >&2; exit 3; }
        mkdir -p "$RUN_DIR" "$DATA_DIR"
        if ! running; then
            rm -f "$PIDFILE" "$SOCKET"
            setsid dockerd \
                --host "$DOCKER_HOST" \
                --pidfile "$PIDFILE" \
                --exec-root "$RUN_DIR/exec" \
                --data-root "$DATA_DIR" \
                --bridge=none --iptables=false --ip6tables=false \
                >"$LOG" 2>&1 </dev/null &
        fi
        for i in $(seq 1 120); do
            if answers; then
                echo "DOCKER_HOST=$DOCKER_HOST"
                exit 0
            fi
            if ! running && [[ -f "$PIDFILE" || $i -gt 10 ]]; then
                break
            fi
            sleep 0.5
        done
        echo "dockerd did not come up; last lines of $LOG:" >&2
        tail -n 20 "$LOG" >&2 || true
        exit 1
        ;;
    stop)
        if running; then
            pid=$(cat "$PIDFILE")
            kill -TERM "$pid"
            for i in $(seq 1 60); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.5
            done
            if kill -0 "$pid" 2>/dev/null; then
                kill -KILL "$pid"
            fi
        fi
        rm -f "$PIDFILE"
        # The host network's namespace handle stays mounted after dockerd exits.
        for handle in "$RUN_DIR"/exec/netns/*; do
            if mountpoint -q "$handle" 2>/dev/null; then
                umount "$handle" || true
            fi
        done
        ;;
    status)
        running && answers
        ;;
    *)
        echo "usage: $0 start|stop|status" >&2
        exit 2
        ;;
esac
