#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster run by the `postgres` user (PostgreSQL refuses to run as root).
#   cluster.sh start DIR PORT [postgresql.conf lines...]   cluster.sh stop DIR
set -euo pipefail
BIN=${PG_BIN:-$(${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config} --bindir)}
cmd=$1 dir=$2
as_postgres() { runuser -u postgres -- "$@"; }
case "$cmd" in
  start)
    port=$3; shift 3
    if [ -f "$dir/data/postmaster.pid" ]; then as_postgres "$BIN/pg_ctl" -D "$dir/data" stop -m immediate >/dev/null 2>&1 || true; fi
    rm -rf "$dir"; mkdir -p "$dir"; chown postgres: "$dir"
    as_postgres "$BIN/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    {
      echo "port = $port"
      echo "listen_addresses = ''"
      echo "unix_socket_directories = '$dir'"
      echo "log_line_prefix = '%m [%p] '"
      for line in "$@"; do echo "$line"; done
    } >> "$dir/data/postgresql.conf"
    as_postgres "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null
    ;;
  stop)
    as_postgres "$BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    ;;
  *) echo "usage: cluster.sh start DIR PORT [conf...] | stop DIR" >&2; exit 2 ;;
esac
