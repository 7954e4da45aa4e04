#!/usr/bin/env bash
# Start this machine's PostgreSQL cluster if it is stopped, make sure the test
# role and database exist, and print the SQLAlchemy URL. Exit 1 if impossible.
set -euo pipefail
command -v pg_lsclusters >/dev/null || exit 1
as_pg() { if [ "$(id -u)" = 0 ]; then su postgres -c "$1"; else sudo -u postgres bash -c "$1"; fi; }
read -r ver name port status _ < <(pg_lsclusters -h | head -n 1) || exit 1
# Only the URL may reach stdout: pg_ctlcluster prints notices there ("Removed stale
# pid file.") that would end up inside the URL. (Not a global `exec 1>&2`: the server
# would inherit the saved descriptor and the caller's $(...) would never finish.)
if [ "$status" != "online" ]; then
  if [ "$(id -u)" = 0 ]; then pg_ctlcluster "$ver" "$name" start >&2
  else sudo pg_ctlcluster "$ver" "$name" start >&2; fi
fi
for _ in $(seq 1 30); do as_pg "psql -p $port -qtAc 'select 1'" >/dev/null 2>&1 && break; sleep 0.5; done
as_pg "psql -p $port -qtAc \"select 1 from pg_roles where rolname='patrol'\"" | grep -q 1 \
  || as_pg "psql -p $port -qc \"create role patrol login password 'patrol' createdb\"" >/dev/null
as_pg "psql -p $port -qtAc \"select 1 from pg_database where datname='patrol_test'\"" | grep -q 1 \
  || as_pg "createdb -p $port -O patrol patrol_test"
echo "postgresql+psycopg://patrol:patrol@127.0.0.1:$port/patrol_test"
