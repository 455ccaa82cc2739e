#!/usr/bin/env bash
# A private one-host Slurm (munged + slurmctld + slurmd) for benchmarks, all under one directory.
#
#   bench/peers/slurm.sh start DIR   # writes DIR/slurm.conf, starts the three daemons, waits for the node
#   SLURM_CONF=DIR/slurm.conf sbatch --wrap true
#   bench/peers/slurm.sh stop DIR    # stops exactly the daemons it started (PIDs in DIR/*.pid)
#
# Needs root and Debian's `slurm-wlm munge` packages (apt-get install -y slurm-wlm munge).
# Ports: $CTLD_PORT / $SLURMD_PORT, or free ones. CPUs: $CPUS, or nproc. munged runs as the
# munge user on its own socket (DIR/munge/munge.socket), so a system munged is never touched.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cmd="${1:-}"; dir="${2:-}"
[[ -n "$cmd" && -n "$dir" ]] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

# Is PID (from DIR/NAME.pid) still the daemon we started (its command line names DIR)?
ours() {
  local pidfile="$dir/$1.pid" pid
  [[ -f "$pidfile" ]] || return 1
  pid="$(cat "$pidfile")"
  [[ -r "/proc/$pid/cmdline" ]] && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF "$dir"
}

stop_one() {
  local name="$1" pid
  ours "$name" || { rm -f "$dir/$name.pid"; return 0; }
  pid="$(cat "$dir/$name.pid")"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do ours "$name" || break; sleep 0.1; done
  if ours "$name"; then kill -KILL "$pid" 2>/dev/null || true; fi
  rm -f "$dir/$name.pid"
}

case "$cmd" in
  start)
    [[ "$(id -u)" == 0 ]] || { echo "slurm.sh: needs root (munged runs as the munge user, SlurmUser=root)" >&2; exit 3; }
    for b in munged slurmctld slurmd sbatch setpriv; do
      command -v "$b" >/dev/null || [[ -x "/usr/sbin/$b" ]] || { echo "slurm.sh: $b not found (apt-get install -y slurm-wlm munge)" >&2; exit 3; }
    done
    [[ -r /etc/munge/munge.key ]] || { echo "slurm.sh: /etc/munge/munge.key missing (reinstall munge)" >&2; exit 3; }
    mkdir -p "$dir"/{state,spool,munge}
    dir="$(cd "$dir" && pwd)"
    chmod 755 "$dir"
    chown munge:munge "$dir/munge"; chmod 711 "$dir/munge"
    host="$(hostname -s)"
    ctld="${CTLD_PORT:-$(free_port)}"; slurmd_port="${SLURMD_PORT:-$(free_port)}"
    while [[ "$slurmd_port" == "$ctld" ]]; do slurmd_port="$(free_port)"; done
    sed -e "s|@DIR@|$dir|g" -e "s|@HOST@|$host|g" -e "s|@CTLD_PORT@|$ctld|g" -e "s|@SLURMD_PORT@|$slurmd_port|g" \
        -e "s|@CPUS@|${CPUS:-$(nproc)}|g" "$here/slurm.conf.in" > "$dir/slurm.conf"
    export SLURM_CONF="$dir/slurm.conf"
    # -F / -D: stay in the foreground, so $! is the daemon itself.
    setpriv --reuid=munge --regid=munge --clear-groups /usr/sbin/munged -F \
      --socket="$dir/munge/munge.socket" --pid-file="$dir/munge/munged.pidfile" \
      --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/seed" </dev/null >/dev/null 2>&1 &
    echo $! > "$dir/munged.pid"
    for _ in $(seq 1 100); do [[ -S "$dir/munge/munge.socket" ]] && break; sleep 0.05; done
    [[ -S "$dir/munge/munge.socket" ]] || { echo "slurm.sh: munged did not start" >&2; "$0" stop "$dir"; exit 4; }
    slurmctld -D -i -f "$dir/slurm.conf" </dev/null >"$dir/slurmctld.out" 2>&1 &
    echo $! > "$dir/slurmctld.pid"
    slurmd -D -f "$dir/slurm.conf" </dev/null >"$dir/slurmd.out" 2>&1 &
    echo $! > "$dir/slurmd.pid"
    for _ in $(seq 1 300); do
      state="$(sinfo -h -o %t 2>/dev/null || true)"
      [[ "$state" == idle* ]] && break
      sleep 0.1
    done
    if [[ "$state" != idle* ]]; then
      echo "slurm.sh: the node did not come up (sinfo: ${state:-no answer}); see $dir/slurmctld.log, $dir/slurmd.log" >&2
      tail -n 5 "$dir/slurmctld.log" "$dir/slurmd.log" "$dir/slurmctld.out" "$dir/slurmd.out" >&2 2>/dev/null || true
      "$0" stop "$dir"; exit 4
    fi
    echo "SLURM_CONF=$dir/slurm.conf munged=$(cat "$dir/munged.pid") slurmctld=$(cat "$dir/slurmctld.pid") slurmd=$(cat "$dir/slurmd.pid")"
    ;;
  stop)
    [[ -d "$dir" ]] || exit 0
    dir="$(cd "$dir" && pwd)"
    stop_one slurmd; stop_one slurmctld; stop_one munged
    ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
