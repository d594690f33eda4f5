#!/bin/bash
# An experiment for issue 18 (see docs/failover-groundwork.md), not part of the product or its tests.
# Run as root on a machine with scripts/install-deps.sh done; it kills every mariadbd on the machine.
# three local galera nodes on loopback, distinct ports
set -e
pkill -9 mariadbd || true; sleep 1
rm -rf /tmp/ev/n1 /tmp/ev/n2 /tmp/ev/n3
for i in 1 2 3; do
  d=/tmp/ev/n$i; mkdir -p $d/data; chown -R mysql:mysql $d
  cat > $d/my.cnf <<CNF
[mysqld]
datadir=$d/data
socket=$d/sock
port=$((3306+i*10))
bind-address=127.0.0.1
pid-file=$d/pid
log-error=$d/err.log
binlog_format=ROW
innodb_autoinc_lock_mode=2
innodb_buffer_pool_size=64M
wsrep_on=ON
wsrep_provider=/usr/lib/galera/libgalera_smm.so
wsrep_cluster_address=gcomm://127.0.0.1:4567,127.0.0.1:4577,127.0.0.1:4587
wsrep_node_address=127.0.0.1:$((4557+i*10))
wsrep_provider_options="gmcast.listen_addr=tcp://127.0.0.1:$((4557+i*10));ist.recv_addr=127.0.0.1:$((4558+i*10))"
wsrep_sst_receive_address=127.0.0.1:$((4559+i*10))
wsrep_sst_method=rsync
wsrep_node_name=n$i
user=mysql
CNF
  mariadb-install-db --defaults-file=$d/my.cnf --user=mysql --auth-root-authentication-method=socket >/dev/null 2>&1
done
mariadbd --defaults-file=/tmp/ev/n1/my.cnf --wsrep-new-cluster & 
for k in $(seq 60); do mariadb -S /tmp/ev/n1/sock -e "select 1" >/dev/null 2>&1 && break; sleep 0.5; done
mariadb -S /tmp/ev/n1/sock -e "create database t; create table t.w (id int primary key auto_increment, v int) engine=innodb"
for i in 2 3; do mariadbd --defaults-file=/tmp/ev/n$i/my.cnf & 
for k in $(seq 120); do [ "$(mariadb -S /tmp/ev/n$i/sock -Nse "show status like 'wsrep_local_state_comment'" 2>/dev/null | cut -f2)" = Synced ] && break; sleep 0.5; done; done
mariadb -S /tmp/ev/n1/sock -Nse "show status like 'wsrep_cluster_size'"
