"""The forecasting planner shared by the live loop (:mod:`dynamo_plan.live`) and the simulator
(:mod:`dynamo_plan.sim`): :class:`ForecastingPlanner` = the pure planner core
(:mod:`dynamo_plan.core.planner`) fed by predictors (:mod:`dynamo_plan.predict`).
"""

from dynamo_plan.control.forecasting import ForecastingPlanner

__all__ = ["ForecastingPlanner"]
