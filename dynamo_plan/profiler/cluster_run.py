"""One online-profiling run's cluster side: a measurement's objects and their cleanup.

:class:`ClusterRun` applies a temporary DGD, waits for Ready, creates the profiling Job, waits
for it and reads the result ConfigMap; it tracks every object it creates (before creating it)
and :meth:`ClusterRun.cleanup` deletes them (Jobs with propagation Background, so their pods
go too), then anything else labelled with the run id. A failed delete is recorded in
``leftovers``, never raised. The driver is :mod:`dynamo_plan.profiler.online_cluster`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dynamo_plan.adapters.kubernetes import KindInfo, KubeClient, kind_info
from dynamo_plan.adapters.profile_files import DECODE_JSON, PREFILL_JSON
from dynamo_plan.deploy.apply import FIELD_MANAGER, ManifestObject, ReadyState, wait_ready
from dynamo_plan.errors import ClusterError, InputError
from dynamo_plan.profiler.cluster_render import (
    ROLE_LABEL,
    RUN_LABEL,
    TP_LABEL,
    Names,
    frontend_url,
    profiler_rbac,
    render_job,
    render_temp_dgd,
    run_names,
)

__all__ = ["CM_INFO", "DGD_INFO", "JOB_INFO", "ClusterRun", "ProfilingProgress", "Progress"]


def _info(api_version: str, kind: str) -> KindInfo:
    info = kind_info(api_version, kind)
    assert info is not None
    return info


DGD_INFO = _info("nvidia.com/v1alpha1", "DynamoGraphDeployment")
JOB_INFO = _info("batch/v1", "Job")
CM_INFO = _info("v1", "ConfigMap")


@dataclass(frozen=True)
class ProfilingProgress:
    """One progress event: ``stage`` (rbac, deploy, wait-ready, job, wait-job, result, pick,
    cleanup-failed, done), a message, and the measurement (``step`` of ``steps``, 0-based)."""

    stage: str
    message: str
    step: int = 0
    steps: int = 0
    tp: int | None = None
    role: str | None = None


Progress = Callable[[ProfilingProgress], None]


# -- the run ------------------------------------------------------------------------------------


class ClusterRun:
    """The objects of one online-profiling run: measure one (TP, role), clean up after."""

    def __init__(
        self,
        client: KubeClient,
        namespace: str,
        dgdr: dict[str, Any],
        run_id: str,
        progress: Progress,
        poll_s: float,
        ready_timeout_s: float,
        job_timeout_s: float,
        sleep: Callable[[float], None],
        planner_image: str | None = None,
    ) -> None:
        self.client, self.namespace, self.dgdr = client, namespace, dgdr
        self.run_id, self.progress = run_id, progress
        self.poll_s, self.ready_timeout_s, self.job_timeout_s = (
            poll_s,
            ready_timeout_s,
            job_timeout_s,
        )
        self.sleep = sleep
        self.planner_image = planner_image  # the Jobs' image (--planner-image; None: default)
        self.tracked: list[tuple[KindInfo, str]] = []  # created (or to be created), in order
        self.deleted: list[str] = []
        self.leftovers: list[str] = []
        self.step, self.steps = 0, 0

    def say(self, stage: str, message: str, tp: int | None = None, role: str | None = None) -> None:
        self.progress(ProfilingProgress(stage, message, self.step, self.steps, tp, role))

    # -- cleanup ---------------------------------------------------------------------------------
    def _delete(self, info: KindInfo, name: str) -> None:
        ref = f"{info.kind}/{name}"
        try:
            existed = self.client.delete(info, self.namespace, name, propagation="Background")
        except ClusterError as e:
            self.leftovers.append(f"{ref} ({e})")
            return
        if existed:
            self.deleted.append(ref)

    def cleanup(self, only: list[tuple[KindInfo, str]] | None = None) -> None:
        """Delete ``only`` (default: everything tracked, then anything with the run label)."""
        targets = list(only if only is not None else self.tracked)
        for info, name in reversed(targets):
            self._delete(info, name)
            if (info, name) in self.tracked:
                self.tracked.remove((info, name))
        if only is None:
            for info in (JOB_INFO, DGD_INFO, CM_INFO):
                selector = f"{RUN_LABEL}={self.run_id}"
                try:
                    listing = self.client.list_objects(info, self.namespace, selector)
                except ClusterError as e:
                    self.leftovers.append(f"{info.plural} labelled {selector} ({e})")
                    continue
                for item in listing or []:
                    self._delete(info, str(item["metadata"]["name"]))

    # -- one measurement -------------------------------------------------------------------------
    def _wait_job(self, names: Names, tp: int, role: str) -> None:
        """Poll the Job (:meth:`KubeClient.wait`) until it succeeds; ClusterError when it fails,
        disappears or is still running after ``job_timeout_s``."""
        ref = f"{self.namespace}/{names.job}"

        def done(job: dict[str, Any] | None) -> bool | str:
            if job is None:
                raise ClusterError(f"Job {ref} disappeared while running")
            status = job.get("status") or {}
            conds = {str(c.get("type")): c for c in status.get("conditions") or []}
            failed = conds.get("Failed")
            if int(status.get("failed") or 0) > 0 or (failed and failed.get("status") == "True"):
                why = (failed or {}).get("message") or (failed or {}).get("reason") or "no message"
                raise ClusterError(f"profiling Job {ref} (TP {tp} {role}) failed: {why}")
            complete = conds.get("Complete")
            if int(status.get("succeeded") or 0) > 0 or (
                complete and complete.get("status") == "True"
            ):
                return True
            last = f"active {status.get('active', 0)}"
            self.say("wait-job", f"Job {names.job}: {last}", tp, role)
            return f"profiling Job {ref} (TP {tp} {role}); last status: {last}"

        self.client.wait(
            JOB_INFO, self.namespace, names.job, done, self.job_timeout_s, self.poll_s,
            sleep=self.sleep,
        )  # fmt: skip

    def _result(self, names: Names, role: str) -> tuple[str, str]:
        """(the result JSON text, where it was read: ``ConfigMap <ns>/<name>``)."""
        cm = self.client.get(CM_INFO, self.namespace, names.configmap)
        key = (PREFILL_JSON if role == "prefill" else DECODE_JSON).name
        data = (cm or {}).get("data") or {}
        where = f"ConfigMap {self.namespace}/{names.configmap}"
        if cm is None:
            raise ClusterError(f"{where}: not found after Job {names.job} succeeded")
        if key not in data:
            raise InputError(f"{where}: no key {key} (found: {', '.join(sorted(data)) or 'none'})")
        return str(data[key]), where

    def measure(self, tp: int, role: str, gpu_product: str | None) -> tuple[str, str]:
        """Deploy, wait Ready, run the Job, read its result; delete the three objects after.
        Returns (the result JSON text, the ConfigMap it came from, for messages)."""
        name = str(self.dgdr["metadata"]["name"])
        names = run_names(name, self.run_id, tp, role)
        labels = {RUN_LABEL: self.run_id, ROLE_LABEL: role, TP_LABEL: str(tp)}
        # deleted in reverse: the Job (its pod) before its result ConfigMap, then the DGD
        mine = [(DGD_INFO, names.dgd), (CM_INFO, names.configmap), (JOB_INFO, names.job)]
        self.tracked += mine
        try:
            dgd = render_temp_dgd(self.dgdr, names, self.namespace, tp, role, labels, gpu_product)
            self.say("deploy", f"applying DGD {names.dgd} ({role} TP {tp})", tp, role)
            self.client.apply(DGD_INFO, self.namespace, dgd, FIELD_MANAGER, force=True)

            def polled(states: list[ReadyState]) -> None:
                self.say("wait-ready", "; ".join(s.summary() for s in states), tp, role)

            obj = ManifestObject(DGD_INFO, names.dgd, self.namespace, dgd)
            wait_ready(
                self.client, [obj], self.ready_timeout_s, self.poll_s, on_poll=polled,
                sleep=self.sleep,
            )  # fmt: skip
            job = render_job(
                self.dgdr, names, self.namespace, frontend_url(dgd), tp, role, labels,
                int(self.job_timeout_s), gpu_product, image=self.planner_image,
            )  # fmt: skip
            self.say("job", f"creating Job {names.job}", tp, role)
            self.client.create(JOB_INFO, self.namespace, job)
            self._wait_job(names, tp, role)
            result = self._result(names, role)
            self.say("result", f"read ConfigMap {names.configmap}", tp, role)
        finally:
            self.cleanup(only=mine)
        return result

    def apply_rbac(self) -> None:
        for obj in profiler_rbac(self.namespace):
            info = _info(obj["apiVersion"], obj["kind"])
            self.client.apply(info, self.namespace, obj, FIELD_MANAGER, force=True)
