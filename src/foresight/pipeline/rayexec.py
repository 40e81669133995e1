"""``--executor ray``: each task a plain Ray task that Ray itself retries when its worker process or node dies.

datatrove's ``RayPipelineExecutor`` runs each task in a ``multiprocess`` pool inside a Ray actor. ``kill -9`` of
that pool's child (it shows as ``ray::RankWorker.run_for_rank`` like the actor) lost the task without an error:
the pool waits for its result for ever, and the next stage then polled its dependency every two minutes, for
ever too (``curate`` hung with 3 of 4 ``filter`` tasks done). Here each task runs in the Ray worker process
itself, one task per process (``max_calls=1``, a fresh process like datatrove's per-task actor), submitted with
``max_retries``: a worker or node that dies is a system failure that Ray sees and retries elsewhere; when the
retries are spent, or the task raises, the stage stops with one line naming the task. Stages run one after the
other, so a stage never waits on an unfinished dependency.

Each task also writes where it ran to ``LOGGING_DIR/nodes/NNNNN.json`` (``task_nodes`` reads them back).
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

from datatrove.executor.ray import RayPipelineExecutor
from datatrove.utils.logging import logger
from datatrove.utils.stats import PipelineStats

NODES_DIR = "nodes"


def run_rank(executor: RayPipelineExecutor, rank: int) -> None:
    """One task, in a Ray worker: record the node it runs on, then run datatrove's task code."""
    import ray

    ctx = ray.get_runtime_context()
    where = {"rank": rank, "node_id": ctx.get_node_id(), "node_ip": ray.util.get_node_ip_address(),
             "hostname": socket.gethostname(), "pid": os.getpid()}
    with executor.logging_dir.open(f"{NODES_DIR}/{rank:05d}.json", "w") as f:  # a retry overwrites it
        f.write(json.dumps(where) + "\n")
    executor._run_for_rank(rank)


def _one_line(err: BaseException) -> str:
    """The failure of a task as one line: the task's own exception, or Ray's first line for a lost worker/node."""
    from ray.exceptions import RayTaskError

    cause = err.cause if isinstance(err, RayTaskError) and err.cause is not None else err
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[0] if text else ''}"


class RayExecutor(RayPipelineExecutor):
    """datatrove's Ray executor with its task loop replaced (module docstring); the tasks' own code is datatrove's."""

    def __init__(self, *args: Any, name: str = "", retries: int = 3, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.name = name or str(self.logging_dir.path)
        self.retries = retries

    def run(self) -> None:
        import ray

        if self.depends is not None and not self.depends._launched:
            self.depends.run()  # returns once all its tasks completed, or raises
        self._launched = True
        ranks = self.get_incomplete_ranks(range(self.world_size))
        if not ranks:
            logger.info(f"All {self.world_size} tasks of {self.name} are completed already.")
            return
        self.save_executor_as_json()
        task = ray.remote(max_calls=1, max_retries=self.retries, retry_exceptions=False)(run_rank).options(
            num_cpus=self.cpus_per_task, num_gpus=self.gpus_per_task,
            memory=int(self.mem_per_cpu_gb * self.cpus_per_task * 1024 ** 3))
        ref, queue, running = ray.put(self), list(ranks), {}
        try:
            while queue or running:
                while queue and len(running) < self.workers:
                    rank = queue.pop(0)
                    running[task.remote(ref, rank)] = rank
                done, _ = ray.wait(list(running), num_returns=1)
                for d in done:
                    rank = running.pop(d)
                    try:
                        ray.get(d)
                    except Exception as e:
                        raise RuntimeError(f"{self.name} task {rank} failed: {_one_line(e)} (a lost worker or "
                                           f"node is retried [executor.ray] retries = {self.retries} times; "
                                           "rerun to resume)") from e  # the task traceback stays chained
        finally:
            for d in running:
                ray.cancel(d, force=True)
        self._merge_stats()

    def _merge_stats(self) -> None:
        """``stats.json``: the sum of every task's stats (what datatrove's executors write at the end)."""
        total = PipelineStats()
        for rank in range(self.world_size):
            with self.logging_dir.open(f"stats/{rank:05d}.json", "r") as f:
                total += PipelineStats.from_json(json.load(f))
        with self.logging_dir.open("stats.json", "wt") as f:
            total.save_to_disk(f)


def task_nodes(logging_dir: str | Path) -> dict[int, dict[str, Any]]:
    """rank → where its last attempt ran (``node_id``, ``node_ip``, ``hostname``, ``pid``), for one stage."""
    d = Path(logging_dir) / NODES_DIR
    return {int(p.stem): json.loads(p.read_text()) for p in sorted(d.glob("*.json"))} if d.is_dir() else {}


def node_summary(logging_dirs: list[str]) -> str:
    """One line: how many tasks of these stages ran on each node (as recorded by the tasks that ran last)."""
    counts: dict[tuple[str, str], int] = {}
    for d in logging_dirs:
        for rec in task_nodes(d).values():
            key = (rec["node_id"][:12], rec["hostname"])
            counts[key] = counts.get(key, 0) + 1
    parts = ", ".join(f"{nid} ({host}) {n}" for (nid, host), n in sorted(counts.items()))
    return f"ray: {sum(counts.values())} task(s) on {len(counts)} node(s): {parts}"
