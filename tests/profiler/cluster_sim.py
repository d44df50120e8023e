"""A test-side "cluster simulator" for online profiling against the Kubernetes API stand-in.

The stand-in stores objects but runs nothing. This thread plays the Dynamo operator and the Job
controller through the real REST API (its own KubeClient): every temporary DGD it sees gets
``status.conditions[Ready] = True`` (unless ``mode == "never-ready"``); every new Job has its
result ConfigMap written from a known profile (the role and TP read from the Job's args) and
its status set to succeeded — or, with ``mode == "fail-job"``, to failed with a condition
message. It records the Jobs it saw and the most temporary objects alive at once.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np

from dynamo_plan.adapters.kubernetes import KubeClient, kind_info
from dynamo_plan.adapters.profile_files import load_profile
from dynamo_plan.deploy.render import profile_configmap_data
from dynamo_plan.errors import ClusterError
from dynamo_plan.profiler.cluster_render import RUN_LABEL

DGD = kind_info("nvidia.com/v1alpha1", "DynamoGraphDeployment")
JOB = kind_info("batch/v1", "Job")
CM = kind_info("v1", "ConfigMap")
assert DGD is not None and JOB is not None and CM is not None
MERGE = "application/merge-patch+json"
FAIL_MESSAGE = "Job has reached the specified backoff limit"
#: the condition fields the DGD CRD requires besides type, status and reason
_SINCE = {"message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}

# how a TP-N engine differs from the measured TP1 profile (synthetic, for choosing between TPs)
PREFILL_SCALE = {1: (1.0, 1.0), 2: (0.6, 0.8), 4: (0.4, 0.55)}  # (ttft ×, thpt/GPU ×)
DECODE_SCALE = {1: (1.0, 1.0, 1.0), 2: (0.7, 0.9, 2.2), 4: (0.55, 0.7, 4.5)}  # itl, thpt, kv


def role_data(profile_dir: Path, tp: int, role: str) -> dict[str, str]:
    """The ConfigMap data a Job measuring ``role`` at ``tp`` publishes (JSON documents)."""
    data = profile_configmap_data(load_profile(profile_dir))
    if role == "prefill":
        doc = json.loads(data["prefill_raw_data.json"])
        ttft_x, thpt_x = PREFILL_SCALE[tp]
        doc["prefill_ttft"] = (np.array(doc["prefill_ttft"]) * ttft_x).tolist()
        doc["prefill_thpt_per_gpu"] = (np.array(doc["prefill_thpt_per_gpu"]) * thpt_x).tolist()
        return {"prefill_raw_data.json": json.dumps(doc), "profile.json": json.dumps({"tp": tp})}
    doc = json.loads(data["decode_raw_data.json"])
    itl_x, thpt_x, kv_x = DECODE_SCALE[tp]
    doc["z_itl"] = (np.array(doc["z_itl"]) * itl_x).tolist()
    doc["z_thpt_per_gpu"] = (np.array(doc["z_thpt_per_gpu"]) * thpt_x).tolist()
    doc["x_kv_usage"] = (np.array(doc["x_kv_usage"]) / kv_x).tolist()
    doc["max_kv_tokens"] = int(doc["max_kv_tokens"] * kv_x)
    return {"decode_raw_data.json": json.dumps(doc), "profile.json": json.dumps({"tp": tp})}


def _arg(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


class ClusterSim:
    """Start with ``with ClusterSim(...) as sim:``; ``mode`` is ok, fail-job or never-ready."""

    def __init__(
        self, kubeconfig: Path, namespace: str, profile_dir: Path, mode: str = "ok"
    ) -> None:
        self.client = KubeClient(kubeconfig=kubeconfig, backoff_s=0.01)
        self.namespace, self.profile_dir, self.mode = namespace, profile_dir, mode
        self.jobs: list[dict[str, Any]] = []
        self.dgds: list[dict[str, Any]] = []
        self.published: dict[str, dict[str, str]] = {}  # ConfigMap name -> data
        self.max_alive = 0
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> ClusterSim:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        assert not self.errors, self.errors

    def _list(self, info: Any) -> list[dict[str, Any]]:
        _s, listing = self.client.request(
            "GET", KubeClient.path(info, self.namespace), {"labelSelector": RUN_LABEL}
        )
        return list((listing or {}).get("items") or [])

    def _loop(self) -> None:
        while not self._stop.wait(0.01):
            try:
                self._tick()
            except ClusterError as e:
                if e.status != 403:  # a test may forbid a resource for a while
                    self.errors.append(e)
                    return
            except BaseException as e:  # surfaced by __exit__
                self.errors.append(e)
                return

    def _status(self, info: Any, name: str, status: dict[str, Any]) -> None:
        path = KubeClient.path(info, self.namespace, name) + "/status"
        self.client.request("PATCH", path, body={"status": status}, content_type=MERGE)

    def _tick(self) -> None:
        dgds, jobs = self._list(DGD), self._list(JOB)
        self.max_alive = max(self.max_alive, len(dgds) + len(jobs))
        for dgd in dgds:
            if not (dgd.get("status") or {}).get("conditions"):
                self.dgds.append(dgd)
                if self.mode != "never-ready":
                    ready = [{"type": "Ready", "status": "True", "reason": "AllReady", **_SINCE}]
                    status = {"state": "successful", "conditions": ready}  # as the CRD requires
                    self._status(DGD, dgd["metadata"]["name"], status)
                else:
                    pending = [
                        {"type": "Ready", "status": "False", "reason": "PodsPending", **_SINCE}
                    ]
                    status = {"state": "pending", "conditions": pending}
                    self._status(DGD, dgd["metadata"]["name"], status)
        for job in jobs:
            if job.get("status"):
                continue
            self.jobs.append(job)
            name = job["metadata"]["name"]
            if self.mode == "fail-job":
                failed = {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}
                failed["message"] = FAIL_MESSAGE
                self._status(JOB, name, {"failed": 1, "conditions": [failed]})
                continue
            args = job["spec"]["template"]["spec"]["containers"][0]["args"]
            tp, role = int(_arg(args, "--tp")), _arg(args, "--role")
            cm_name = _arg(args, "--result-configmap")
            data = role_data(self.profile_dir, tp, role)
            self.published[cm_name] = data
            body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": cm_name}}
            body["data"] = data
            self.client.request("POST", KubeClient.path(CM, self.namespace), body=body)
            done = {"type": "Complete", "status": "True"}
            self._status(JOB, name, {"succeeded": 1, "conditions": [done]})
