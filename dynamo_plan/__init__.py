"""dynamo-plan: SLA-driven sizing and planning for disaggregated LLM inference (NVIDIA Dynamo compatible).

The packages form a ladder: a package imports only packages on lower rungs, never a neighbour on
its own rung nor anything above (function-local imports included). ``scripts/import_graph.py``
prints the graph and fails on a cycle or an upward import (its ``LAYERS`` is this picture, and
``tests/test_import_graph.py`` runs it); each package's ``ruff.toml`` bans the rungs above it::

    10  __main__                      python -m dynamo_plan
     9  cli                           Typer commands; the only place for typer/rich
     8  profiler                      TP sweeps, online/cluster profiling, the `dgdr run` workflow
     7  deploy                        DGDR/DGD rendering, validation, apply, doctor
     6  live | sim                    the `plan run` loop and settings | the cluster simulator
     5  connectors                    none, virtual, kubernetes scaling
     4  adapters | control            outside services (Prometheus, etcd, Kubernetes, profile
                                      files, virtual state) | ForecastingPlanner
     3  trace | predict | estimator   traces, predictors, the roofline estimator and catalogs
     2  formats | resources | plotting  YAML lines, schema messages, atomic files | shipped
                                      files | the one plot style
     1  core                          pure math: SLA sizing, planner state machine, profiles
     0  errors                        the one error tree
"""

__version__ = "0.1.0"
