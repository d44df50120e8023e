"""dynamo-plan: SLA-driven sizing and planning for disaggregated LLM inference (NVIDIA Dynamo compatible).

The packages form a ladder: a package imports only packages on lower rungs, never a neighbour on
its own rung nor anything above (function-local imports included). ``scripts/import_graph.py``
prints the graph and fails on a cycle or an upward import (its ``LAYERS`` is this picture, and
``tests/test_import_graph.py`` runs it); each package's ``ruff.toml`` bans the rungs above it::

    11  __main__                      python -m dynamo_plan
    10  cli                           Typer commands; the only place for typer/rich
     9  profiler                      TP sweeps, online/cluster profiling, the `dgdr run` workflow
     8  deploy                        DGDR/DGD rendering, validation, apply, doctor
     7  live                          the `plan run` loop and settings (sizes with sim's model
                                      when an SLA-attainment target is set)
     6  sim                           the cluster simulator, the optimal search, attainment sizing
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
