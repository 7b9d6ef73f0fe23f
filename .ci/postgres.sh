#!/usr/bin/env bash
# A throwaway PostgreSQL server for the PostgreSQL storage tests (tests/test_postgres_*.py).
#
#   .ci/postgres.sh start   installs Debian's PostgreSQL when missing, creates a cluster in $VALLEY_PG_DIR
#                           (default /tmp/valley-ci-postgres, wiped first), starts it on 127.0.0.1:$VALLEY_PG_PORT
#                           (default 55432), creates the database valley_test and prints its URL (the only stdout)
#   .ci/postgres.sh stop    stops that server and removes its folder
#
# PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` system user (created by
# Debian's package) and every server command runs through `runuser`; as any other user it is that user's own.
# The server trusts local connections (no password) and skips fsync: it holds test data only.
set -euo pipefail
DIR="${VALLEY_PG_DIR:-/tmp/valley-ci-postgres}"
PORT="${VALLEY_PG_PORT:-55432}"
DB=valley_test

bindir() {
    if command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ]; then
        pg_config --bindir
        return
    fi
    # Debian keeps the server binaries out of PATH, one folder per major version: take the newest.
    find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin 2>/dev/null | sort -V | tail -n 1
}

as_owner() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-}" in
start)
    BIN="$(bindir)"
    if [ -z "$BIN" ] || [ ! -x "$BIN/initdb" ]; then
        SUDO=""
        if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
        export DEBIAN_FRONTEND=noninteractive
        $SUDO apt-get update -qq >&2
        $SUDO apt-get install -y -qq --no-install-recommends postgresql >&2
        BIN="$(bindir)"
    fi
    if [ -f "$DIR/data/postmaster.pid" ]; then
        as_owner "$BIN/pg_ctl" -D "$DIR/data" -m immediate stop >&2 || true
    fi
    rm -rf "$DIR"
    mkdir -p "$DIR"
    if [ "$(id -u)" -eq 0 ]; then chown postgres: "$DIR"; fi
    as_owner "$BIN/initdb" -D "$DIR/data" --auth=trust --username=postgres --no-sync --encoding=UTF8 >"$DIR/initdb.log"
    as_owner "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 start \
        -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off" >&2
    as_owner "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres "$DB"
    echo "postgresql://postgres@127.0.0.1:$PORT/$DB"
    ;;
stop)
    BIN="$(bindir)"
    if [ -n "$BIN" ] && [ -f "$DIR/data/postmaster.pid" ]; then
        as_owner "$BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >&2 || true
    fi
    rm -rf "$DIR"
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
