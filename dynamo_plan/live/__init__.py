"""The live planner: ``dynamo-plan plan run``.

Modules: :mod:`~dynamo_plan.live.loop` (the tick loop), :mod:`~dynamo_plan.live.exporter`
(``dynamo_planner_*`` Prometheus metrics), :mod:`~dynamo_plan.live.config` (settings, YAML config
file, merge with flags), :mod:`~dynamo_plan.live.service` (assembling a run from its settings),
:mod:`~dynamo_plan.live.record` (one tick's record and log line).
"""
