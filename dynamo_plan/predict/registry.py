"""Predictor registry: names, availability (installed or not) and construction by name."""

from __future__ import annotations

import difflib
import importlib.util
import inspect
from collections.abc import Callable
from typing import Any

from dynamo_plan.errors import InputError
from dynamo_plan.predict.arima import ArimaPredictor
from dynamo_plan.predict.base import Predictor
from dynamo_plan.predict.constant import ConstantPredictor
from dynamo_plan.predict.ensemble import DefaultPredictor
from dynamo_plan.predict.kalman import KalmanPredictor
from dynamo_plan.predict.prophet import ProphetPredictor

__all__ = [
    "PREDICTORS",
    "available_predictors",
    "describe_predictors",
    "make_predictor",
    "predictor_names",
]

PREDICTORS: dict[str, type[Predictor]] = {
    "constant": ConstantPredictor,
    "arima": ArimaPredictor,
    "kalman": KalmanPredictor,
    "prophet": ProphetPredictor,
    "default": DefaultPredictor,
}

_EXTRAS: dict[str, tuple[str, str]] = {"prophet": ("prophet", "prophet")}  # name -> (module, extra)


def predictor_names() -> list[str]:
    """Every registered name, installed or not, in registry order."""
    return list(PREDICTORS)


def available_predictors() -> dict[str, bool]:
    """Name -> whether it can be constructed here (its optional extra is installed)."""
    return {
        name: name not in _EXTRAS or importlib.util.find_spec(_EXTRAS[name][0]) is not None
        for name in PREDICTORS
    }


def _unknown(name: str) -> InputError:
    close = difflib.get_close_matches(name, PREDICTORS, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return InputError(
        f"unknown predictor '{name}'{hint}; known predictors: {', '.join(PREDICTORS)}"
    )


def make_predictor(name: str, **params: Any) -> Predictor:
    """A new predictor ``name`` with ``params`` (its constructor's keyword arguments)."""
    cls = PREDICTORS.get(name)
    if cls is None:
        raise _unknown(name)
    try:
        return cls(**params)
    except TypeError as e:
        accepted = ", ".join(_defaults(cls))
        raise InputError(
            f"predictor '{name}': bad parameters {params}; accepted: {accepted}"
        ) from e


def factory(name: str, **params: Any) -> Callable[[], Predictor]:
    """A zero-argument constructor (checked now by building one predictor)."""
    make_predictor(name, **params)
    return lambda: make_predictor(name, **params)


def _defaults(cls: type[Predictor]) -> dict[str, Any]:
    sig = inspect.signature(cls.__init__)
    return {
        p.name: p.default
        for p in sig.parameters.values()
        if p.name != "self" and p.default is not inspect.Parameter.empty
    }


def describe_predictors() -> list[dict[str, Any]]:
    """One record per predictor: name, installed, extra (or None), hyper-parameter defaults."""
    installed = available_predictors()
    out = []
    for name, cls in PREDICTORS.items():
        defaults = {k: list(v) if isinstance(v, tuple) else v for k, v in _defaults(cls).items()}
        out.append(
            {
                "name": name,
                "installed": installed[name],
                "extra": _EXTRAS[name][1] if name in _EXTRAS else None,
                "params": defaults,
                "summary": (inspect.getdoc(cls) or "").splitlines()[0],
            }
        )
    return out
