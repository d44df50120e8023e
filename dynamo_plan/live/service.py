"""Assembling ``plan run`` from its settings: planner config, warm start, metrics source,
connector, exporter, loop. The CLI parses flags and signals; this module does the rest.

The SLA's ``isl``/``osl`` (the shape Dynamo profiles at) mean the load shape assumed before one
is measured: when neither ``warmup_trace`` nor the frontend has given an ISL/OSL yet, the ISL and
OSL predictors start from them (one prior point each; the first measured window takes over,
since every predictor follows the measured values). Without that prior, a first busy window
whose ISL/OSL series are missing would leave the planner holding (``hold_no_data``). At start
the SLA is also sized once at that shape, and a target the profile cannot meet there is
reported (:func:`startup_notes`).

With ``sla_attainment`` the planner sizes with :class:`~dynamo_plan.sim.attainment.AttainmentSizer`
(the simulator replaying a sample of recent request shapes), the shapes kept current from the
frontend's token histograms by :class:`~dynamo_plan.live.attainment.ShapeFeed` over the last
:data:`SHAPE_WINDOW_INTERVALS` intervals (:func:`make_shape_feed`).
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dynamo_plan.adapters.frontend import FrontendMetricsSource
from dynamo_plan.connectors.base import Connector
from dynamo_plan.control import ForecastingPlanner
from dynamo_plan.core.correction import CorrectionConfig
from dynamo_plan.core.planner import PlannerConfig, Sizer, formula_plan
from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.core.sla import SLA, EngineGpus, Limits, Load, check_budget, size_replicas
from dynamo_plan.errors import ExternalServiceError, InfeasibleSLAError, InputError
from dynamo_plan.live.attainment import ShapeFeed, TokenHistogramSource
from dynamo_plan.live.config import RunSettings, sizing_knobs
from dynamo_plan.live.exporter import PlannerMetrics
from dynamo_plan.live.loop import PlannerLoop, json_log_line
from dynamo_plan.sim.attainment import AttainmentSizer, default_patience
from dynamo_plan.trace.bucket import IntervalSeries

__all__ = [
    "build_planner",
    "initial_replicas",
    "make_connector",
    "make_shape_feed",
    "make_source",
    "planner_config",
    "preflight",
    "run_planner",
    "seed_shape",
    "startup_notes",
    "warmup_series",
]


#: Intervals of frontend histograms the attainment sizer's request shapes come from.
SHAPE_WINDOW_INTERVALS = 5

#: Look-ahead steps above which :func:`startup_notes` warns (each step is sized at every tick).
MANY_LOOKAHEAD_STEPS = 60


def planner_config(s: RunSettings) -> PlannerConfig:
    """The core's config; InfeasibleSLAError (exit 4) when ``min_endpoint`` engines of both
    roles do not fit ``max_gpu_budget``."""
    engines = EngineGpus(s.prefill_engine_num_gpu, s.decode_engine_num_gpu)
    limits = Limits(s.min_endpoint, None if s.max_gpu_budget == -1 else s.max_gpu_budget)
    check_budget(engines, limits)
    return PlannerConfig(
        interval_s=s.interval,
        sla=SLA(s.ttft, s.itl),
        engines=engines,
        limits=limits,
        startup_s=s.startup_s,
        load_quantile=s.load_quantile,
        scale_down_patience=(
            s.scale_down_patience
            if s.scale_down_patience is not None
            else default_patience(s.sla_attainment)
        ),
        correction=CorrectionConfig(enabled=not s.no_correction),
        **sizing_knobs(s),  # --sizing: this project's formula or Dynamo's
    )


def startup_notes(s: RunSettings, config: PlannerConfig, profile: PerformanceProfile) -> list[str]:
    """Warnings at start: an SLA the profile cannot meet at its own shape (``isl``/``osl``;
    sized once, not best effort), and a look-ahead so long (``startup_s / interval`` steps) that
    every tick sizes hundreds of steps."""
    notes = []
    steps = config.lookahead_steps()
    if steps > MANY_LOOKAHEAD_STEPS:
        notes.append(
            f"--startup-s {s.startup_s:g} / --interval {s.interval:g} means {steps} look-ahead "
            f"steps sized at every tick (slow); use a longer interval or a shorter start-up time"
        )
    try:
        size_replicas(
            Load(1.0, s.isl, s.osl, config.interval_s),
            profile,
            config.sla,
            config.engines,
            config.limits,
            ttft_quantile=config.ttft_quantile,
        )
    except InfeasibleSLAError as e:
        notes.append(
            f"at the SLA shape isl={s.isl:g} osl={s.osl:g}: {e}; the planner sizes best effort"
        )
    return notes


def seed_shape(planner: ForecastingPlanner, isl: float, osl: float) -> None:
    """Give the ISL/OSL predictors one prior point each (the request-count predictor skips the
    leading zero it is fed alongside)."""
    import pandas as pd

    frame = pd.DataFrame(
        {"start_s": [0.0], "count": [0.0], "isl": [isl], "osl": [osl], "filled": [False]}
    )
    planner.warm_start(IntervalSeries(planner.config.interval_s, frame))


def warmup_series(path: Path, interval_s: float) -> tuple[IntervalSeries, bool]:
    """``path``'s history bucketed at ``interval_s``, and whether it holds any ISL/OSL.

    Intervals whose ISL/OSL are unknown (e.g. a rate series without lengths) are marked
    ``filled`` so that only their request count is fed.
    """
    from dynamo_plan.trace import bucket, load_trace

    series = bucket(load_trace([path]), interval_s)
    frame = series.frame
    busy = ~frame["filled"].to_numpy(dtype=bool)
    known = np.isfinite(frame["isl"].to_numpy(dtype=float)) & np.isfinite(
        frame["osl"].to_numpy(dtype=float)
    )
    if not known.all():
        frame = frame.assign(
            filled=frame["filled"] | ~known,
            isl=frame["isl"].where(known, 0.0),
            osl=frame["osl"].where(known, 0.0),
        )
        series = IntervalSeries(series.interval_s, frame)
    return series, bool((busy & known).any())


def build_planner(
    s: RunSettings,
    config: PlannerConfig,
    profile: PerformanceProfile,
    initial: tuple[int, int],
    predictor_params: dict[str, Any] | None = None,
    sizer: Sizer = formula_plan,
) -> ForecastingPlanner:
    """The forecasting planner, seeded with the SLA shape when ``warmup_trace`` gives none, then
    warm-started from the trace (module docstring). The seed goes first: the request-count
    predictor skips the leading zero fed with it, which it would not after the trace's history."""
    planner = ForecastingPlanner(
        config,
        profile,
        s.predictor,
        initial_prefill=initial[0],
        initial_decode=initial[1],
        predictor_params=predictor_params,
        sizer=sizer,
    )
    series: IntervalSeries | None = None
    shaped = False
    if s.warmup_trace is not None:
        series, shaped = warmup_series(s.warmup_trace, config.interval_s)
    if not shaped:
        seed_shape(planner, s.isl, s.osl)
    if series is not None:
        try:
            planner.warm_start(series)
        except InputError as e:
            raise InputError(f"{s.warmup_trace}: cannot warm start the predictors: {e}") from e
    return planner


def make_shape_feed(s: RunSettings, config: PlannerConfig, source: object) -> ShapeFeed | None:
    """The attainment sizer and its shape feed when ``sla_attainment`` is set (module
    docstring); the prior shapes are the warm-up trace's requests, else the SLA's ISL/OSL."""
    if s.sla_attainment is None:
        return None
    if not isinstance(source, TokenHistogramSource):
        raise InputError("--sla-attainment needs a metrics source with token histograms")
    window = SHAPE_WINDOW_INTERVALS * config.interval_s
    prior = np.array([round(s.isl)]), np.array([round(s.osl)])
    origin = f"the SLA shape ISL {s.isl:g} / OSL {s.osl:g} (none measured yet)"
    if s.warmup_trace is not None:
        from dynamo_plan.sim.requests import RequestArrays
        from dynamo_plan.trace import load_trace

        req = RequestArrays.from_trace(load_trace([s.warmup_trace]))
        tail = req.arrival_s >= req.arrival_s[-1] - window  # its last window, like the feed's
        prior = req.isl[tail], req.osl[tail]
        origin = f"the warm-up trace's last {int(tail.sum())} requests (none measured yet)"
    sizer = AttainmentSizer.for_planner(s.sla_attainment, config)
    return ShapeFeed(sizer, source, window, prior, origin)


def make_source(s: RunSettings) -> FrontendMetricsSource:
    """The Prometheus adapter for ``model`` (and ``namespace``); no I/O."""
    from dynamo_plan.adapters.prometheus import PrometheusClient, resolve_prometheus_url

    assert s.model is not None  # check_settings
    return PrometheusClient(
        resolve_prometheus_url(s.prometheus_url),
        s.model,
        namespace=s.namespace,
        token_file=s.prometheus_token_file,
        ca_bundle=s.prometheus_ca_bundle,
    )


def make_connector(s: RunSettings, say: Callable[[str], None] | None = None) -> Connector:
    """``none`` (observe only), ``virtual`` over a state file or etcd, or ``kubernetes`` (the
    DGD ``s.dgd``; loads the kubeconfig or the in-cluster config, sends nothing; ``say`` gets
    how it scales each role, on its first read of the DGD and whenever that changes)."""
    if s.connector == "kubernetes":
        from dynamo_plan.connectors.kubernetes import connect_kubernetes_connector

        assert s.dgd is not None  # check_settings
        return connect_kubernetes_connector(
            s.dgd, s.kube_namespace, s.kubeconfig, s.context, s.ready_timeout, say
        )
    if s.connector == "virtual":
        from dynamo_plan.connectors.virtual import VirtualConnector
        from dynamo_plan.connectors.virtual_store import make_store

        store = make_store(s.state, s.etcd, namespace=s.namespace or "default")
        return VirtualConnector(store, ack_timeout_s=s.virtual_timeout, wait_s=s.virtual_wait)
    from dynamo_plan.connectors.none import ObserveOnlyConnector

    return ObserveOnlyConnector()


def preflight(source: FrontendMetricsSource, connector: Connector) -> None:
    """Settings that cannot work, refused before the first tick (:class:`InputError`, exit 1):
    each part's own ``check()`` — the Prometheus adapter's (token file, CA bundle) and the
    connector's (the virtual connector's file store: the ``--state`` path can hold the state).
    Local files only: an unreachable Prometheus, etcd or cluster is not a setting error (the
    planner holds and retries)."""
    source.check()
    connector.check()


def _engines_from_connector(
    s: RunSettings,
    config: PlannerConfig,
    connector: Connector,
    warn: Callable[[str], None] | None,
) -> tuple[RunSettings, PlannerConfig]:
    """GPUs per engine as the deployment declares them (``resources.limits.gpu`` of the DGD's
    workers) when the connector can read them; the DGD wins over the flags, with a warning when
    they disagree."""
    gpus = connector.engine_gpus()
    if gpus is None:
        return s, config
    prefill, decode = gpus
    if (prefill, decode) == (s.prefill_engine_num_gpu, s.decode_engine_num_gpu):
        return s, config
    if warn is not None:
        warn(
            f"GPUs per engine from the DGD: prefill {prefill}, decode {decode} (flags said "
            f"{s.prefill_engine_num_gpu}, {s.decode_engine_num_gpu}); using the DGD's"
        )
    s = dataclasses.replace(s, prefill_engine_num_gpu=prefill, decode_engine_num_gpu=decode)
    return s, planner_config(s)


def initial_replicas(
    connector: Connector, floor: int, warn: Callable[[str], None] | None = None
) -> tuple[int, int]:
    """Replicas serving at start as the connector reports them, else ``floor`` per role."""
    try:
        serving = connector.observe()
    except ExternalServiceError as e:
        if warn is not None:
            warn(f"connector {connector.name}: cannot read the replicas serving ({e}); "
                 f"starting from {floor} per role")  # fmt: skip
        return floor, floor
    if serving is None:
        return floor, floor
    return serving.prefill, serving.decode


#: The pod's namespace, as every Kubernetes pod with a service account token has it.
SA_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def metric_labels(
    s: RunSettings, env: Mapping[str, str] | None = None, sa_file: Path = SA_NAMESPACE_FILE
) -> dict[str, str]:
    """Constant labels of the planner's metrics: ``namespace``, the Kubernetes namespace that
    Dynamo's dashboard selects (``--kube-namespace``, else ``POD_NAMESPACE`` from ``env``, else
    the pod's own namespace from ``sa_file``, else the Dynamo namespace, else ``default``), and
    ``dynamo_namespace`` (the Dynamo namespace, ``""`` when none)."""
    env = os.environ if env is None else env
    dyn = s.namespace or ""
    kube = s.kube_namespace or env.get("POD_NAMESPACE")
    if not kube:
        try:
            kube = sa_file.read_text(encoding="utf-8").strip()
        except OSError:  # not in a pod
            kube = ""
    return {"namespace": kube or dyn or "default", "dynamo_namespace": dyn}


def run_planner(
    s: RunSettings,
    stop: threading.Event,
    *,
    predictor_params: dict[str, Any] | None = None,
    warn: Callable[[str], None] | None = None,
    log: Callable[[dict[str, Any]], None] = json_log_line,
    profile: PerformanceProfile | None = None,
) -> dict[str, Any]:
    """Assemble everything from ``s`` and run the loop until ``max_ticks`` or ``stop``; returns
    the loop's summary. ``profile``: the profile already loaded (e.g. extended beyond its
    measured range by the caller), else ``s.profile`` is read."""
    from dynamo_plan.adapters.profile_files import load_profile

    assert s.profile is not None  # check_settings
    config = planner_config(s)
    profile = load_profile(s.profile) if profile is None else profile
    for note in startup_notes(s, config, profile):
        if warn is not None:
            warn(note)
    source = make_source(s)
    connector = make_connector(s, warn)
    preflight(source, connector)
    s, config = _engines_from_connector(s, config, connector, warn)
    initial = initial_replicas(connector, config.limits.min_endpoint, warn)
    feed = make_shape_feed(s, config, source)
    sizer = formula_plan if feed is None else feed.sizer
    planner = build_planner(s, config, profile, initial, predictor_params, sizer)
    exporter = PlannerMetrics(
        labels=metric_labels(s), sla_ms=(config.sla.ttft_ms, config.sla.itl_ms)
    )
    server = exporter.serve(s.metrics_port, s.metrics_addr) if s.metrics_port else None
    loop = PlannerLoop(
        planner, source, connector, s.interval, exporter, log=log,
        before_decision=None if feed is None else feed.refresh,
    )  # fmt: skip
    try:
        summary = loop.run(s.max_ticks, stop)
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
        source.close()
    summary["metrics"] = (
        None if server is None else f"http://{s.metrics_addr}:{s.metrics_port}/metrics"
    )
    return summary
