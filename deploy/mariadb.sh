#!/usr/bin/env bash
# deploy/mariadb.sh: make sure a MariaDB server answers on 127.0.0.1:3306 for
# root with an empty password, as VitalProof's quickstart and tests expect.
#
#  - already answering: nothing to do;
#  - installed but stopped: start it (systemd when it runs, else start-stop-daemon);
#  - not installed: apt-get install mariadb-server (Debian/Ubuntu), then start it.
#
# A fresh Debian install lets root log in only through the Unix socket; for a
# development machine this script then also allows root over TCP from
# localhost with an empty password (MariaDB's "unix_socket OR
# mysql_native_password" form), and says so. Never run it against a
# production server: point VitalProof at your server's DSN instead.
set -euo pipefail

say() { echo "mariadb.sh: $*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
tcp_ping() { mysqladmin --protocol=tcp -h127.0.0.1 -P3306 -uroot --connect-timeout=2 ping >/dev/null 2>&1; }
sock_ping() { as_root mysqladmin -uroot --connect-timeout=2 ping >/dev/null 2>&1; }

if command -v mysqladmin >/dev/null 2>&1 && tcp_ping; then
  exit 0
fi

if [ ! -x /usr/sbin/mariadbd ] && [ ! -x /usr/sbin/mysqld ]; then
  say "MariaDB is not installed: installing mariadb-server with apt-get"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q mariadb-server mariadb-client
fi

if ! sock_ping && ! tcp_ping; then
  say "starting MariaDB"
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    as_root systemctl start mariadb
  else
    as_root mkdir -p /run/mysqld
    as_root chown mysql:mysql /run/mysqld 2>/dev/null || true
    daemon=/usr/sbin/mariadbd
    [ -x "$daemon" ] || daemon=/usr/sbin/mysqld
    as_root start-stop-daemon --start --oknodo --background --exec "$daemon" -- --user=mysql
  fi
  for _ in $(seq 1 60); do
    if sock_ping || tcp_ping; then break; fi
    sleep 0.5
  done
fi

if tcp_ping; then
  exit 0
fi
if sock_ping; then
  say "allowing root over TCP from localhost with an empty password (development setup)"
  as_root mysql -uroot -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD(''); FLUSH PRIVILEGES;"
  tcp_ping && exit 0
fi
say "MariaDB does not answer on 127.0.0.1:3306 as root; see the server's log (journalctl -u mariadb or /var/log/mysql)"
exit 1
