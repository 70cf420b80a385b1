#!/bin/bash
# Behaves like the official mysql image's entrypoint, for what the suite uses:
# MYSQL_ROOT_PASSWORD / MYSQL_ALLOW_EMPTY_PASSWORD, MYSQL_DATABASE, MYSQL_USER,
# MYSQL_PASSWORD (MARIADB_* aliases too), /docker-entrypoint-initdb.d/*.sql|*.sql.gz|*.sh,
# and server options given as arguments ("--wait-timeout=5").
set -euo pipefail

log() { echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) [Entrypoint]: $*" >&2; }

if [ "${1:0:1}" = "-" ]; then
    set -- mariadbd "$@"
fi
if [ "$1" != "mariadbd" ] && [ "$1" != "mysqld" ]; then
    exec "$@"
fi
shift
run_as=()
[ "$(id -u)" = "0" ] && run_as=(--user=mysql)

: "${MYSQL_ROOT_PASSWORD:=${MARIADB_ROOT_PASSWORD:-}}"
: "${MYSQL_ALLOW_EMPTY_PASSWORD:=${MARIADB_ALLOW_EMPTY_ROOT_PASSWORD:-}}"
: "${MYSQL_DATABASE:=${MARIADB_DATABASE:-}}"
: "${MYSQL_USER:=${MARIADB_USER:-}}"
: "${MYSQL_PASSWORD:=${MARIADB_PASSWORD:-}}"
DATADIR=/var/lib/mysql
SOCKET=/run/mysqld/mysqld.sock

sql_quote() { printf "%s" "$1" | sed -e "s/\\\\/\\\\\\\\/g" -e "s/'/\\\\'/g"; }

if [ ! -d "$DATADIR/mysql" ]; then
    if [ -z "$MYSQL_ROOT_PASSWORD" ] && [ -z "$MYSQL_ALLOW_EMPTY_PASSWORD" ]; then
        log "error: database is uninitialized and MYSQL_ROOT_PASSWORD is not set"
        exit 1
    fi
    log "Initializing database files"
    mariadb-install-db "${run_as[@]}" --datadir="$DATADIR" --auth-root-authentication-method=normal \
        --skip-test-db --skip-name-resolve >/dev/null
    log "Starting temporary server"
    mariadbd "${run_as[@]}" --datadir="$DATADIR" --skip-networking --socket="$SOCKET" "$@" &
    pid=$!
    for _ in $(seq 1 60); do
        mariadb-admin --no-defaults -uroot --socket="$SOCKET" ping --silent 2>/dev/null && break
        sleep 0.5
    done
    root_pw=$(sql_quote "$MYSQL_ROOT_PASSWORD")
    {
        echo "SET @@SESSION.SQL_LOG_BIN=0;"
        echo "DELETE FROM mysql.global_priv WHERE user='' OR (user='root' AND host NOT IN ('localhost'));"
        echo "CREATE USER 'root'@'%' IDENTIFIED BY '${root_pw}';"
        echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
        echo "ALTER USER 'root'@'localhost' IDENTIFIED BY '${root_pw}';"
        if [ -n "$MYSQL_DATABASE" ]; then
            echo "CREATE DATABASE IF NOT EXISTS \`${MYSQL_DATABASE}\`;"
        fi
        if [ -n "$MYSQL_USER" ] && [ "$MYSQL_USER" != "root" ]; then
            echo "CREATE USER '$(sql_quote "$MYSQL_USER")'@'%' IDENTIFIED BY '$(sql_quote "$MYSQL_PASSWORD")';"
            if [ -n "$MYSQL_DATABASE" ]; then
                echo "GRANT ALL ON \`${MYSQL_DATABASE}\`.* TO '$(sql_quote "$MYSQL_USER")'@'%';"
            fi
        fi
        echo "FLUSH PRIVILEGES;"
    } | mariadb --no-defaults -uroot --socket="$SOCKET"
    export MYSQL_PWD="$MYSQL_ROOT_PASSWORD"
    for f in /docker-entrypoint-initdb.d/*; do
        case "$f" in
            *.sh) log "running $f"; . "$f" ;;
            *.sql) log "running $f"; mariadb --no-defaults -uroot --socket="$SOCKET" "${MYSQL_DATABASE:-mysql}" < "$f" ;;
            *.sql.gz) log "running $f"; gunzip -c "$f" | mariadb --no-defaults -uroot --socket="$SOCKET" "${MYSQL_DATABASE:-mysql}" ;;
            *) ;;
        esac
    done
    unset MYSQL_PWD
    log "Stopping temporary server"
    kill "$pid"
    wait "$pid"
    log "Temporary server stopped; init process done, ready for start up"
fi
exec mariadbd "${run_as[@]}" --datadir="$DATADIR" "$@"
