"""The Prometheus boundary: the frontend's metrics for one model over a window (DESIGN §6).

:class:`PrometheusClient` implements :class:`~dynamo_plan.adapters.frontend.FrontendMetricsSource`
over Prometheus's HTTP API (instant queries, ``GET <url>/api/v1/query``). Every failure leaves
:meth:`PrometheusClient.query` as one-line :class:`~dynamo_plan.errors.MetricsError`;
:meth:`PrometheusClient.window` never raises for an outside failure (``status='unknown'``).

Means are count-weighted over the histograms' ``_sum``/``_count`` (DESIGN §6)::

    mean_X = sum by (model, dynamo_namespace)(increase(dynamo_frontend_X_sum{sel}[W]))
           / sum by (model, dynamo_namespace)(increase(dynamo_frontend_X_count{sel}[W]))

The numerator and denominator are fetched separately (not as the ratio) so that when several
series match (several namespaces when none is given) they combine count-weighted:
``Σ sums / Σ counts``, never a mean of means. The request count is
``Σ increase(dynamo_frontend_requests_total{sel}[W])``.

One round trip per window: the eleven sub-queries (requests, five sums, five counts) are tagged
with ``label_replace(…, "dynamo_plan_stat", "<name>", "", "")`` and joined with ``or`` (tags make
every label set distinct, so ``or`` keeps them all). All are evaluated at the same instant, so
the sums, counts and requests come from the same scrapes.

Token histograms (:meth:`PrometheusClient.token_histograms`, for ``--sla-attainment``): one more
round trip, ``sum by (le)(increase(dynamo_frontend_{input,output}_sequence_tokens_bucket{sel}[W]))``
and the two ``_sum`` totals, tagged and joined the same way.

Idle threshold: ``increase()`` extrapolates ``delta · (extrapolated span / sampled span)`` with a
factor ≥ 1 (it only extends the sampled span to the window's edges), so an integer counter that
grew gives ≥ 1 and one that did not gives exactly 0. A total below :data:`IDLE_BELOW` (0.5)
therefore means "no request finished in the window" while staying robust to float rounding.
"""

from __future__ import annotations

import json
import math
import os
import ssl
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import httpx

from dynamo_plan.adapters.frontend import FrontendWindow
from dynamo_plan.core.token_histogram import TokenHistogram
from dynamo_plan.errors import InputError, MetricsError, UsageError
from dynamo_plan.formats.files import read_text

__all__ = [
    "ENV_VAR",
    "HISTOGRAMS",
    "IDLE_BELOW",
    "PrometheusClient",
    "promql_duration",
    "promql_string",
    "quote_meta",
    "resolve_prometheus_url",
    "selector",
    "token_histograms_query",
    "window_query",
]

ENV_VAR = "PROMETHEUS_ENDPOINT"
IDLE_BELOW = 0.5
REQUESTS_METRIC = "dynamo_frontend_requests_total"
#: FrontendWindow field -> histogram base name (``<name>_sum`` / ``<name>_count``).
HISTOGRAMS: dict[str, str] = {
    "ttft_s": "dynamo_frontend_time_to_first_token_seconds",
    "itl_s": "dynamo_frontend_inter_token_latency_seconds",
    "isl": "dynamo_frontend_input_sequence_tokens",
    "osl": "dynamo_frontend_output_sequence_tokens",
    "request_duration_s": "dynamo_frontend_request_duration_seconds",
}
STAT_LABEL = "dynamo_plan_stat"
GROUP_BY = "model, dynamo_namespace"
_GO_REGEX_META = frozenset("\\.+*?()|[]{}^$")


def resolve_prometheus_url(flag: str | None) -> str:
    """The Prometheus base URL: ``flag``, else ``$PROMETHEUS_ENDPOINT``; it must be http(s)."""
    url = flag if flag else os.environ.get(ENV_VAR, "")
    if not url:
        raise UsageError(f"give --prometheus-url or set {ENV_VAR}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError(f"Prometheus URL must be http(s)://host[:port][/path], got {url!r}")
    return url


def quote_meta(text: str) -> str:
    """``text`` as a Go/RE2 regex matching it literally (Go's ``regexp.QuoteMeta``)."""
    return "".join("\\" + c if c in _GO_REGEX_META else c for c in text)


def promql_string(text: str) -> str:
    """``text`` as a double-quoted PromQL string literal (``\\``, ``"`` and controls escaped)."""
    # JSON's escapes (\\ \" \b \f \n \r \t \uXXXX) are a subset of PromQL's (Go's) escapes.
    return json.dumps(text, ensure_ascii=False)


def promql_duration(interval_s: float) -> str:
    """``interval_s`` as a PromQL duration: whole seconds as ``180s``, else milliseconds ``1500ms``."""
    if not math.isfinite(interval_s) or interval_s <= 0:
        raise InputError(f"window interval must be a positive number of seconds, got {interval_s}")
    ms = round(interval_s * 1000.0)
    if ms < 1:
        raise InputError(f"window interval must be >= 0.001 s, got {interval_s}")
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def selector(model: str, namespace: str | None = None) -> str:
    """Label matchers: ``model`` matched case-insensitively and literally, ``namespace`` exactly."""
    parts = [f"model=~{promql_string('(?i)' + quote_meta(model))}"]
    if namespace is not None:
        parts.append(f"dynamo_namespace={promql_string(namespace)}")
    return "{" + ", ".join(parts) + "}"


def _tagged(stat: str, expr: str) -> str:
    return f'label_replace({expr}, "{STAT_LABEL}", "{stat}", "", "")'


def window_query(model: str, namespace: str | None, interval_s: float) -> str:
    """The one instant query behind :meth:`PrometheusClient.window` (see the module docstring).

    Each result series carries ``dynamo_plan_stat`` = ``requests``, ``<field>:sum`` or
    ``<field>:count`` (``<field>`` a key of :data:`HISTOGRAMS`).
    """
    sel, w = selector(model, namespace), promql_duration(interval_s)

    def inc(metric: str) -> str:
        return f"sum by ({GROUP_BY})(increase({metric}{sel}[{w}]))"

    parts = [_tagged("requests", inc(REQUESTS_METRIC))]
    for field, base in HISTOGRAMS.items():
        parts.append(_tagged(f"{field}:sum", inc(f"{base}_sum")))
        parts.append(_tagged(f"{field}:count", inc(f"{base}_count")))
    return " or ".join(parts)


#: Token histograms of :meth:`PrometheusClient.token_histograms`: key -> histogram base name.
TOKEN_HISTOGRAMS: dict[str, str] = {"isl": HISTOGRAMS["isl"], "osl": HISTOGRAMS["osl"]}


def token_histograms_query(model: str, namespace: str | None, window_s: float) -> str:
    """The one instant query behind :meth:`PrometheusClient.token_histograms`: per key of
    :data:`TOKEN_HISTOGRAMS`, its buckets summed by ``le`` (tagged ``<key>:bucket``) and its
    ``_sum`` (tagged ``<key>:sum``) over the last ``window_s`` seconds."""
    sel, w = selector(model, namespace), promql_duration(window_s)
    parts = []
    for key, base in TOKEN_HISTOGRAMS.items():
        parts.append(_tagged(f"{key}:bucket", f"sum by (le)(increase({base}_bucket{sel}[{w}]))"))
        parts.append(_tagged(f"{key}:sum", f"sum(increase({base}_sum{sel}[{w}]))"))
    return " or ".join(parts)


def _sample_value(raw: Any, where: str) -> float:
    """A ``[timestamp, "value"]`` pair's value (Prometheus sends numbers as strings, NaN too)."""
    try:
        return float(raw[1])
    except (TypeError, ValueError, IndexError) as e:
        raise MetricsError(f'{where}: expected [time, "number"], got {raw!r:.100}') from e


class PrometheusClient:
    """Instant queries against one Prometheus, and :meth:`window` for one model (and namespace).

    ``token_file``: a bearer token, read at every query (rotated tokens work); ``ca_bundle``: PEM
    CA certificates to verify an https server with; ``timeout_s``: per request, in seconds;
    ``transport``: the ``httpx`` transport to send through (default: httpx's own, over the
    network; tests pass an :class:`httpx.MockTransport`; a given transport does its own TLS, so
    ``ca_bundle`` is still checked but not used).
    Construction does no I/O; the HTTP client is created at the first query.
    """

    def __init__(
        self,
        url: str,
        model: str,
        namespace: str | None = None,
        token_file: Path | None = None,
        ca_bundle: Path | None = None,
        timeout_s: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.model = model
        self.namespace = namespace
        self.token_file = token_file
        self.ca_bundle = ca_bundle
        self.timeout_s = timeout_s
        self.transport = transport
        self._client: httpx.Client | None = None

    # -- HTTP ---------------------------------------------------------------------------------
    def check(self) -> None:
        """Preflight, before the first query (``plan run`` calls it before its first tick): the
        token file is readable UTF-8 text and not empty, the CA bundle loads as PEM certificates.
        :class:`InputError` (exit 1) naming the file otherwise. Reads local files only; no
        network (an unreachable Prometheus is not a setting error: the planner holds)."""
        if self.token_file is not None:
            self._token()
        if self.ca_bundle is not None:
            self._ssl_context(self.ca_bundle)

    @staticmethod
    def _ssl_context(ca_bundle: Path) -> ssl.SSLContext:
        """A context verifying with ``ca_bundle``; InputError when it is unreadable or not PEM."""
        try:
            return ssl.create_default_context(cafile=str(ca_bundle))
        except ssl.SSLError as e:  # before OSError: SSLError is one
            raise InputError(
                f"Prometheus CA bundle {ca_bundle}: not PEM CA certificates "
                f"({e.reason or _one_line(e)})"
            ) from e
        except OSError as e:
            raise InputError(
                f"cannot read Prometheus CA bundle {ca_bundle}: {e.strerror or e}"
            ) from e

    def _token(self) -> str:
        """The bearer token (surrounding whitespace dropped); InputError when the file cannot be
        read, is not UTF-8 text or is empty."""
        assert self.token_file is not None
        token = read_text(self.token_file, "Prometheus token file").strip()
        if not token:
            raise InputError(f"Prometheus token file {self.token_file} is empty")
        return token

    def _http(self) -> httpx.Client:
        if self._client is None:
            verify: ssl.SSLContext | bool = True
            if self.ca_bundle is not None:
                try:
                    verify = self._ssl_context(self.ca_bundle)
                except InputError as e:  # at query time: the service is unusable, not the flag
                    raise MetricsError(str(e)) from e
            self._client = httpx.Client(
                timeout=self.timeout_s, verify=verify, transport=self.transport
            )
        return self._client

    def _headers(self) -> dict[str, str]:
        """The Authorization header; the token file is read at every query (rotation works)."""
        if self.token_file is None:
            return {}
        try:
            token = self._token()
        except InputError as e:  # rotated away mid-run: this window is unknown, not a crash
            raise MetricsError(str(e)) from e
        return {"Authorization": f"Bearer {token}"}

    def query(self, promql: str) -> list[tuple[dict[str, str], float]]:
        """Run an instant query now: ``[(labels, value), …]`` (a scalar gives ``[({}, v)]``).

        Raises :class:`MetricsError` (one line naming the endpoint) on a connection error, a
        timeout, an HTTP error, a Prometheus ``status: error`` or a body that is not the API's JSON.
        """
        endpoint = f"{self.url}/api/v1/query"
        headers = self._headers()
        try:
            resp = self._http().get(endpoint, params={"query": promql}, headers=headers)
        except httpx.TimeoutException as e:
            raise MetricsError(
                f"Prometheus {endpoint} timed out after {self.timeout_s:g} s ({type(e).__name__})"
            ) from e
        except httpx.HTTPError as e:
            raise MetricsError(
                f"cannot reach Prometheus {endpoint}: {type(e).__name__}: {_one_line(e)}"
            ) from e
        try:
            body = resp.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("status") == "error":
            raise MetricsError(
                f"Prometheus {endpoint} answered HTTP {resp.status_code} "
                f"{body.get('errorType', '?')}: {_one_line(body.get('error', '?'))}"
            )
        if resp.status_code != 200:
            snippet = _one_line(resp.text[:200])
            raise MetricsError(
                f"Prometheus {endpoint} answered HTTP {resp.status_code}: {snippet or '(empty)'}"
            )
        if not isinstance(body, dict) or body.get("status") != "success":
            snippet = _one_line(resp.text[:100])
            raise MetricsError(
                f"Prometheus {endpoint}: expected the API's JSON "
                f'{{"status": "success", ...}}, got {snippet or "(empty)"!r}'
            )
        return _parse_data(body.get("data"), endpoint)

    # -- the frontend window --------------------------------------------------------------------
    def window(self, interval_s: float) -> FrontendWindow:
        """The frontend's metrics over the last ``interval_s`` seconds (see the module docstring).

        ``unknown``: Prometheus failed, or no ``dynamo_frontend_requests_total`` series matched;
        ``idle``: Σ increase(requests) < :data:`IDLE_BELOW`; ``value``: each mean is
        Σ sums / Σ counts over the matching series, ``None`` where absent, NaN or 0/0.
        Raises :class:`InputError` only for a non-positive ``interval_s`` (a caller's bug).
        """
        promql = window_query(self.model, self.namespace, interval_s)
        try:
            rows = self.query(promql)
        except MetricsError as e:
            return FrontendWindow("unknown", str(e), interval_s)
        sums: dict[str, dict[tuple[str, str], float]] = {}
        requests: list[float] = []
        for labels, value in rows:
            stat = labels.get(STAT_LABEL, "")
            if stat == "requests":
                if math.isfinite(value):
                    requests.append(value)
                continue
            key = (labels.get("model", ""), labels.get("dynamo_namespace", ""))
            sums.setdefault(stat, {})[key] = value
        ns = "any" if self.namespace is None else repr(self.namespace)
        where = f"model={self.model!r} (any case) namespace={ns}"
        if not requests:
            return FrontendWindow(
                "unknown",
                f"no {REQUESTS_METRIC} series for {where} with 2+ samples in the last "
                f"{promql_duration(interval_s)}",
                interval_s,
            )
        total = math.fsum(requests)
        series = f"{len(requests)} series"
        if total < IDLE_BELOW:
            return FrontendWindow("idle", f"no requests for {where} ({series})", interval_s)
        means = {field: _weighted_mean(sums, field) for field in HISTOGRAMS}
        missing = [field for field, v in means.items() if v is None]
        detail = f"{total:g} requests for {where} ({series})"
        if missing:
            detail += f"; no data for {', '.join(missing)}"
        return FrontendWindow("value", detail, interval_s, requests=total, **means)

    def token_histograms(self, window_s: float) -> dict[str, TokenHistogram] | None:
        """ISL and OSL histograms (keys ``isl``, ``osl``) of the requests of the last
        ``window_s`` seconds (module docstring); ``None`` when either has no bucket series or
        counted no request. Raises :class:`MetricsError` when Prometheus fails."""
        rows = self.query(token_histograms_query(self.model, self.namespace, window_s))
        buckets: dict[str, dict[float, float]] = {k: {} for k in TOKEN_HISTOGRAMS}
        totals: dict[str, float] = dict.fromkeys(TOKEN_HISTOGRAMS, 0.0)
        for labels, value in rows:
            key, _, kind = labels.get(STAT_LABEL, "").partition(":")
            if key not in TOKEN_HISTOGRAMS or not math.isfinite(value):
                continue
            if kind == "sum":
                totals[key] += value
            elif kind == "bucket" and "le" in labels:
                try:
                    le = float(labels["le"])
                except ValueError as e:
                    raise MetricsError(f"{key} histogram: bucket bound {labels['le']!r}") from e
                buckets[key][le] = buckets[key].get(le, 0.0) + value
        out: dict[str, TokenHistogram] = {}
        for key, by_le in buckets.items():
            if not by_le:
                return None
            hist = TokenHistogram.from_cumulative(list(by_le), list(by_le.values()), totals[key])
            if hist.requests < IDLE_BELOW:
                return None
            out[key] = hist
        return out

    # -- lifetime -------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the HTTP connection pool (a later query opens a new one)."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _one_line(text: object) -> str:
    """``text`` with every run of whitespace (newlines included) collapsed to one space."""
    return " ".join(str(text).split())


def _weighted_mean(stats: dict[str, dict[tuple[str, str], float]], field: str) -> float | None:
    """Σ sum / Σ count over the series that have both, finite; ``None`` when Σ count is 0."""
    sums, counts = stats.get(f"{field}:sum", {}), stats.get(f"{field}:count", {})
    pairs = [
        (s, counts[k])
        for k, s in sums.items()
        if k in counts and math.isfinite(s) and math.isfinite(counts[k])
    ]
    total_count = math.fsum(c for _, c in pairs)
    if total_count <= 0:
        return None
    return math.fsum(s for s, _ in pairs) / total_count


def _parse_data(data: Any, endpoint: str) -> list[tuple[dict[str, str], float]]:
    """``data`` of an instant query: a vector or a scalar."""
    if not isinstance(data, dict):
        raise MetricsError(f"Prometheus {endpoint}: answer has no 'data' object")
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        return [({}, _sample_value(result, f"Prometheus {endpoint} scalar"))]
    if kind != "vector" or not isinstance(result, list):
        raise MetricsError(
            f"Prometheus {endpoint}: expected an instant vector or scalar, got resultType={kind!r}"
        )
    return list(_vector(result, endpoint))


def _vector(result: list[Any], endpoint: str) -> Iterator[tuple[dict[str, str], float]]:
    for i, item in enumerate(result):
        where = f"Prometheus {endpoint} result[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("metric"), dict):
            raise MetricsError(f"{where}: expected {{'metric': {{…}}, 'value': […]}}")
        labels = {str(k): str(v) for k, v in item["metric"].items()}
        yield labels, _sample_value(item.get("value"), where)
