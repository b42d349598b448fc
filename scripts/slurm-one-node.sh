#!/usr/bin/env bash
# A one-node Slurm with accounting (munge, MariaDB, slurmdbd, slurmctld, slurmd) for the launcher
# tests, everything in one folder of its own; needs root and Debian's slurm-wlm, slurmdbd, munge
# and mariadb-server packages (.ci/run installs them).
#
#   scripts/slurm-one-node.sh start DIR   start the daemons; DIR/pids lists what was started,
#                                         DIR/etc/slurm.conf is the config: export
#                                         SLURM_CONF=DIR/etc/slurm.conf to use this cluster
#   scripts/slurm-one-node.sh stop DIR    stop the daemons listed in DIR/pids, newest first
#
# DIR is required: no shared default folder whose pids file someone else could have written.
# stop kills a listed PID only when that process is still the daemon the line names (its
# /proc/PID/cmdline), and reads DIR/pids only when it is a regular file owned by this user.
# Accounting is not optional: without slurmdbd, sacct knows nothing and submitit cannot learn a
# job's state.
set -euo pipefail
action=${1:-}
[ -n "${2:-}" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
DIR=$(realpath -m "$2")
PIDS=$DIR/pids
DAEMONS="munged mariadbd slurmdbd slurmctld slurmd"

ours() {  # ours NAME PID: the process PID is still the daemon NAME that start launched
  case " $DAEMONS " in *" $1 "*) ;; *) return 1 ;; esac
  [[ "$2" =~ ^[0-9]+$ ]] && [ -r "/proc/$2/cmdline" ] || return 1
  local first
  first=$(tr '\0' '\n' < "/proc/$2/cmdline" | head -n 1)
  [ "$(basename -- "$first")" = "$1" ]
}

stop() {
  [ -e "$PIDS" ] || return 0
  [ -f "$PIDS" ] && [ ! -L "$PIDS" ] && [ -O "$PIDS" ] || {
    echo "error: $PIDS: expected a regular file of this user's; fix: remove it by hand" >&2
    return 2; }
  local name pid
  tac "$PIDS" | while read -r name pid; do
    if ours "$name" "$pid"; then kill "$pid" 2>/dev/null || true
    else echo "note: $name $pid is not running as started here; left alone" >&2; fi
  done
  while read -r name pid; do
    ours "$name" "$pid" || continue
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  done < "$PIDS"
  rm -f "$PIDS"
}

case "$action" in
  stop) stop; exit $? ;;
  start) ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac

for tool in munged mariadbd mariadb-install-db slurmdbd slurmctld slurmd sacctmgr; do
  command -v "$tool" >/dev/null || PATH=$PATH:/usr/sbin
  command -v "$tool" >/dev/null || { echo "error: $tool not found; fix: apt-get install -y" \
    "slurm-wlm slurmdbd munge mariadb-server" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "error: $0 start must run as root (the daemons run as root)" >&2; exit 2; }
[ -f "$PIDS" ] && { echo "error: $PIDS exists: a cluster is running there; run '$0 stop $DIR'" >&2; exit 2; }

# A failed start stops what it had started.
trap 'status=$?; [ $status = 0 ] || { echo "slurm start failed; logs in $DIR/log" >&2; stop; }' EXIT

HOST=$(hostname -s)
CPUS=$(nproc)
MEM=$(( $(free -m | awk '/^Mem:/{print $2}') * 85 / 100 ))  # choice: leave 15% to the OS
MYSQL_PORT=${SLURM_ONE_NODE_DB_PORT:-3307}  # choice: not 3306, so a system MariaDB can coexist
mkdir -p "$DIR"/{etc,log,munge,mysql,run,spool/ctld,spool/d}
chmod 755 "$DIR"  # munged runs as the munge user: it must reach DIR/munge (mktemp -d makes 700)
chown munge:munge "$DIR/munge"; chmod 700 "$DIR/munge"
mkdir -p /run/munge; chown munge:munge /run/munge
: > "$PIDS"

wait_for() {
  # each try bounded: a client tool can hang for minutes on a daemon that is not up yet
  for _ in $(seq 1 100); do timeout 3 "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "timeout waiting for: $*" >&2; return 1
}
started() { echo "$1 $2" >> "$PIDS"; }

# ===== munge: its own key and socket =====
# munged runs as the munge user (as root it refuses root's clients), on munge's default socket:
# sacctmgr's connection to slurmdbd ignores AuthInfo=socket=..., so a private socket breaks it.
[ -s "$DIR/munge/munge.key" ] || { dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 \
  status=none; chown munge:munge "$DIR/munge/munge.key"; chmod 400 "$DIR/munge/munge.key"; }
su -s /bin/sh munge -c "munged --force --key-file='$DIR/munge/munge.key' \
  --pid-file='$DIR/munge/munged.pid' \
  --log-file='$DIR/munge/munged.log' --seed-file='$DIR/munge/seed'"
wait_for test -s "$DIR/munge/munged.pid"; started munged "$(cat "$DIR/munge/munged.pid")"
wait_for sh -c "munge -n | unmunge"

# ===== MariaDB for slurmdbd, on a loopback port =====
[ -d "$DIR/mysql/mysql" ] || mariadb-install-db --user=root --datadir="$DIR/mysql" \
  --auth-root-authentication-method=normal >"$DIR/log/mariadb-install.log" 2>&1
setsid mariadbd --user=root --datadir="$DIR/mysql" --bind-address=127.0.0.1 --port="$MYSQL_PORT" \
  --socket="$DIR/run/mysqld.sock" --pid-file="$DIR/run/mysqld.pid" \
  --log-error="$DIR/log/mariadb.err" </dev/null >/dev/null 2>&1 &
wait_for mariadb-admin --socket="$DIR/run/mysqld.sock" ping
started mariadbd "$(cat "$DIR/run/mysqld.pid")"
mariadb --socket="$DIR/run/mysqld.sock" -e "
  CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm-one-node';
  CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm-one-node';
  GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
  GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"

# ===== Slurm configs: the client tools find them through SLURM_CONF =====
cat > "$DIR/etc/slurm.conf" <<CONF
ClusterName=onenode
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
StateSaveLocation=$DIR/spool/ctld
SlurmdSpoolDir=$DIR/spool/d
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
# choice: a short KillWait, so that a cancelled test job is killed within seconds
KillWait=5
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF
cat > "$DIR/etc/slurmdbd.conf" <<CONF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$MYSQL_PORT
StorageUser=slurm
StoragePass=slurm-one-node
LogFile=$DIR/log/slurmdbd.log
PidFile=$DIR/run/slurmdbd.pid
CONF
chmod 600 "$DIR/etc/slurmdbd.conf"
export SLURM_CONF=$DIR/etc/slurm.conf

# ===== the daemons, each waited for before the next =====
slurmdbd; wait_for test -s "$DIR/run/slurmdbd.pid"; started slurmdbd "$(cat "$DIR/run/slurmdbd.pid")"
wait_for sacctmgr -n show cluster
sacctmgr -i -Q add cluster onenode >/dev/null 2>&1 || true
slurmctld; wait_for scontrol ping; started slurmctld "$(cat "$DIR/run/slurmctld.pid")"
slurmd; wait_for test -s "$DIR/run/slurmd.pid"; started slurmd "$(cat "$DIR/run/slurmd.pid")"
wait_for sh -c 'sinfo -h -o %T | grep -qx idle'
echo "slurm up in $DIR: $(sinfo -h -o '%P %D %T %c CPUs %m MB'); export SLURM_CONF=$SLURM_CONF"
