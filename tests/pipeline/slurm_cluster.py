"""A private single-node Slurm cluster (munged + slurmctld + slurmd on localhost, 2 CPUs) for the tests.

Everything lives in one temporary directory: slurm.conf (found through ``SLURM_CONF``), the munge key and
socket, state, spool and logs; the daemons listen on free ports and run in the foreground as children of
the test; ``stop`` cancels the jobs and kills the daemons and every process left of this cluster. Needs
Debian's ``slurm-wlm`` and ``munge`` and root (slurmd launches jobs as their user); ``.ci/run`` installs
the packages.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import foresight
from foresight.pipeline.orphans import die_with_parent

DAEMONS = ("munged", "slurmctld", "slurmd")
CPUS = 2
PARTITION = "debug"


def unavailable() -> str | None:
    """Why no cluster can be started here, or None."""
    missing = [d for d in (*DAEMONS, "sbatch", "squeue", "sinfo", "scontrol", "scancel", "mungekey")
               if shutil.which(d) is None and not Path("/usr/sbin", d).exists()]
    if missing:
        return (f"Slurm test needs Debian's slurm-wlm and munge ({', '.join(missing)} missing): "
                "apt-get install -y slurm-wlm munge (.ci/run does this as root)")
    if os.geteuid() != 0:
        return "Slurm test needs root (slurmd starts jobs as their user)"
    return None


def _exe(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:  # all bound at once: n different ports
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class ClusterError(RuntimeError):
    pass


def cluster_processes(conf: str) -> list[int]:
    """Pids of the live processes whose environment holds ``SLURM_CONF=conf``: the daemons, slurmstepd, job
    scripts and tasks of that cluster, and nothing else."""
    mark = f"SLURM_CONF={conf}".encode()
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            if mark in Path("/proc", d, "environ").read_bytes().split(b"\0"):
                pids.append(int(d))
        except OSError:
            pass  # gone, or not ours to read
    return pids


def kill_cluster(conf: str) -> list[int]:
    """SIGKILL every process of the cluster, a few sweeps apart (a dying parent may fork); returns survivors."""
    for _ in range(3):
        pids = cluster_processes(conf)
        if not pids:
            return []
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
    return cluster_processes(conf)


# Run by the watchdog: when its stdin closes (the test process ended, even by SIGKILL), kill what is left.
_WATCHDOG = """
import shutil, sys
from tests.pipeline.slurm_cluster import kill_cluster
sys.stdin.buffer.read()
kill_cluster(sys.argv[1])
shutil.rmtree(sys.argv[2], ignore_errors=True)
"""


class SlurmCluster:
    """``start()`` brings munged, slurmctld and slurmd up (node idle); ``cmd`` runs Slurm's commands on it;
    ``env`` is the environment that reaches it (``SLURM_CONF``)."""

    def __init__(self) -> None:
        # Short: the munge socket path must fit in a sockaddr_un (108 bytes).
        self.root = Path(tempfile.mkdtemp(prefix="fs-slurm-", dir="/tmp"))
        self.node = socket.gethostname().split(".")[0]
        self.procs: list[subprocess.Popen] = []
        self.watchdog: subprocess.Popen | None = None  # cleans up if the test process is killed
        self.env = {**os.environ, "SLURM_CONF": str(self.root / "slurm.conf")}
        for var in [k for k in self.env if k.startswith(("SLURM_", "SBATCH_", "SRUN_", "SQUEUE_"))]:
            if var != "SLURM_CONF":  # the test may itself run inside a Slurm job: use only our cluster
                del self.env[var]

    # ---- start / stop
    def start(self, timeout: float = 60.0) -> None:
        for d in ("munge", "state", "spool", "log"):
            (self.root / d).mkdir(mode=0o700)
        repo, src = Path(__file__).resolve().parents[2], Path(foresight.__file__).resolve().parents[1]
        self.watchdog = subprocess.Popen([sys.executable, "-c", _WATCHDOG, self.env["SLURM_CONF"], str(self.root)],
                                         stdin=subprocess.PIPE, start_new_session=True, cwd=repo,
                                         env={**self.env, "SLURM_CONF": "", "PYTHONPATH": f"{repo}{os.pathsep}{src}"})
        self._start_munge()
        (self.root / "slurm.conf").write_text(self._conf())
        self._spawn([_exe("slurmctld"), "-D", "-i"], "slurmctld")
        self._spawn([_exe("slurmd"), "-D", "-N", self.node], "slurmd")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            res = self.cmd("sinfo", "-h", "-N", "-o", "%T", check=False)
            if res.returncode == 0 and res.stdout.strip() == "idle":
                return
            time.sleep(0.3)
        raise ClusterError(f"the Slurm node did not become idle in {timeout:.0f} s\n{self.logs()}")

    def stop(self) -> None:
        """Cancel every job, kill the daemons and any process left of this cluster, remove its files.

        Job steps run under slurmstepd in sessions of their own, so they would outlive slurmd: every process
        whose environment names this cluster's slurm.conf (daemons, slurmstepd, job scripts, tasks) is killed
        by its pid; raises if one survives SIGKILL."""
        try:
            if all(p.poll() is None for p in self.procs):
                self.cmd("scancel", "--full", "-u", "root", check=False)
                try:
                    self.wait_idle(30)
                except ClusterError:
                    pass  # killed below
            for p in reversed(self.procs):
                self._kill(p)
            left = self._kill_leftovers()
            if left:
                raise ClusterError(f"processes of the test cluster survived SIGKILL: {left}")
        finally:
            if self.watchdog is not None:
                self.watchdog.stdin.close()  # it sweeps once more and removes the directory
                self.watchdog.wait(timeout=30)
            shutil.rmtree(self.root, ignore_errors=True)

    def processes(self) -> list[int]:
        """Pids of the live processes started for this cluster (their environment holds its SLURM_CONF)."""
        return cluster_processes(self.env["SLURM_CONF"])

    def _kill_leftovers(self) -> list[int]:
        return kill_cluster(self.env["SLURM_CONF"])

    def _kill(self, p: subprocess.Popen) -> None:
        if p.poll() is not None:
            return
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=15)

    def _start_munge(self) -> None:
        key = self.root / "munge" / "munge.key"
        subprocess.run([_exe("mungekey"), "--create", f"--keyfile={key}"], check=True, capture_output=True)
        key.chmod(0o600)
        m = self.root / "munge"
        self._spawn([_exe("munged"), "--foreground", "--force", f"--socket={m / 'munge.socket'}",
                     f"--key-file={key}", f"--pid-file={m / 'munged.pid'}", f"--seed-file={m / 'munged.seed'}",
                     f"--log-file={self.root / 'log' / 'munged.log'}"], "munged")
        deadline = time.monotonic() + 20
        while not (m / "munge.socket").exists():
            self._check_alive()
            if time.monotonic() > deadline:
                raise ClusterError(f"munged did not create its socket\n{self.logs()}")
            time.sleep(0.1)

    def _spawn(self, argv: list[str], name: str) -> None:
        """A daemon in the foreground, in a session of its own, killed by the kernel if the test process dies."""
        parent = os.getpid()
        out = open(self.root / "log" / f"{name}.stdout", "wb")  # noqa: SIM115 - the child holds it
        self.procs.append(subprocess.Popen(argv, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                           start_new_session=True, preexec_fn=lambda: die_with_parent(parent)))
        out.close()

    def _check_alive(self) -> None:
        dead = [p.args[0] for p in self.procs if p.poll() is not None]
        if dead:
            raise ClusterError(f"{', '.join(map(str, dead))} exited\n{self.logs()}")

    def _conf(self) -> str:
        r = self.root
        mem_mb = 2048  # the node's schedulable memory: ≤ any CI machine's, ≥ what the tests ask for
        ctld_port, slurmd_port = _free_ports(2)
        return f"""ClusterName=foresight-test
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={r}/munge/munge.socket
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd.pid
SlurmctldLogFile={r}/log/slurmctld.log
SlurmdLogFile={r}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
DependencyParameters=kill_invalid_depend
MinJobAge=5
NodeName={self.node} NodeAddr=127.0.0.1 CPUs={CPUS} RealMemory={mem_mb} State=UNKNOWN
PartitionName={PARTITION} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
"""

    # ---- commands
    def cmd(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        res = subprocess.run([_exe(argv[0]), *argv[1:]], env=self.env, capture_output=True, text=True, timeout=60)
        if check and res.returncode != 0:
            raise ClusterError(f"{' '.join(argv)} failed ({res.returncode}): {res.stderr.strip()}\n{self.logs()}")
        return res

    def jobs(self) -> list[dict[str, str]]:
        """Jobs in the queue (pending, running, completing): id, name, state, array task."""
        out = self.cmd("squeue", "-h", "-r", "-o", "%i|%j|%T|%K").stdout
        return [dict(zip(("id", "name", "state", "task"), line.split("|"), strict=True))
                for line in out.splitlines() if line.strip()]

    def wait_idle(self, timeout: float, why: str = "", extra_logs: Path | None = None) -> None:
        """Until the queue is empty; else fail showing the queue and every log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            if not self.jobs():
                return
            time.sleep(0.5)
        raise ClusterError(f"Slurm jobs still queued after {timeout:.0f} s {why}: {self.jobs()}\n"
                           f"{self.logs(extra_logs)}")

    def logs(self, extra: Path | None = None, lines: int = 30) -> str:
        """The tails of the daemons' logs and of every Slurm job log under ``extra``."""
        files = sorted((self.root / "log").glob("*"))
        if extra is not None and extra.exists():
            files += sorted(extra.rglob("slurm_logs/*.out")) + sorted(extra.rglob("curate.log"))
        parts = []
        for f in files:
            text = f.read_text(errors="replace").strip().splitlines()[-lines:]
            parts.append(f"==> {f} <==\n" + "\n".join(text))
        return "\n".join(parts)
