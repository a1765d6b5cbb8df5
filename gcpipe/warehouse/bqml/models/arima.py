"""ARIMA_PLUS (``model_type='arima_plus'``): BigQuery ML's time-series pipeline, one series or many at once
(``time_series_id_col``), with statsmodels' ARIMA at its core.

Per series, as BigQuery's ARIMA_PLUS reference describes the pipeline: the points are put on a regular
grid of ``data_frequency`` (AUTO_FREQUENCY: the most common step) and gaps interpolated;
``clean_spikes_and_dips`` replaces points further than 6 scaled median absolute deviations from a
rolling median by that median; ``decompose_time_series`` finds the seasonal periods the frequency allows
(hourly data: DAILY 24 and WEEKLY 168 points; daily: WEEKLY 7 and YEARLY 365), each kept when the series
spans two of them and it explains at least a tenth of the variance left, and removes them (classical
decomposition: the mean of each phase around a centred moving average); then ARIMA(p, d, q) fits what is
left: with ``auto_arima`` d from the KPSS test (0 to 2) and the (p, q) of least AIC with p + q up to
``auto_arima_max_order`` (each of p, q up to 3 here), else ``non_seasonal_order``; drift with d = 1 and
``include_drift``. Forecasts continue the seasons and add the ARIMA forecast; the interval is the forecast
plus or minus the normal quantile of ``confidence_level`` times its standard error. Holidays and step
changes are not modelled locally (``has_holiday_effect`` and ``has_step_changes`` are FALSE).

Functions (each as its BigQuery ML reference lists the columns, the series id columns first):
``ML.FORECAST``, ``ML.EXPLAIN_FORECAST``, ``ML.ARIMA_EVALUATE``, ``ML.DETECT_ANOMALIES`` (the training
points against the one-step predictions, ``anomaly_prob_threshold`` default 0.95), ``ML.EVALUATE`` of
input points against the forecast.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gcpipe.warehouse.bqml.features import NUMERIC_TYPES, ModelError, bigquery_type
from gcpipe.warehouse.bqml.functions import Call
from gcpipe.warehouse.bqml.models.base import Model, require_columns
from gcpipe.warehouse.bqml.options import ModelOptions
from gcpipe.warehouse.bqml.sql import MlSqlError

MIN_POINTS = 3  # BigQuery's minimum length of a series
_STEPS = {"PER_MINUTE": 60, "HOURLY": 3600, "DAILY": 86400, "WEEKLY": 7 * 86400}
_SEASONS = {
    3600: [("DAILY", 24), ("WEEKLY", 168)],
    86400: [("WEEKLY", 7), ("YEARLY", 365)],
    7 * 86400: [("YEARLY", 52)],
    60: [("HOURLY", 60), ("DAILY", 1440)],
}
SEASONAL_NAMES = ("yearly", "quarterly", "monthly", "weekly", "daily")


@dataclass
class Series:
    """One fitted series: its history (cleaned and decomposed) and the forecast up to the model's horizon."""

    key: list[Any]  # the time_series_id_col values
    start: int  # first timestamp, microseconds since the epoch
    step: int  # microseconds between points
    data: list[float]  # on the regular grid, gaps interpolated
    cleaned: list[float]
    seasonal: dict[str, list[float]]  # period name -> component over the history, then the horizon
    fitted: list[float]  # one-step predictions of the history (seasons included)
    order: list[int]
    has_drift: bool
    log_likelihood: float
    aic: float
    variance: float
    forecast: list[float] = field(default_factory=list)  # the model's horizon ahead, seasons included
    errors: list[float] = field(default_factory=list)  # their standard errors
    trend_forecast: list[float] = field(default_factory=list)

    def timestamps(self, start: int, count: int) -> list[int]:
        return [self.start + (start + k) * self.step for k in range(count)]


@dataclass
class ArimaPlusModel(Model):
    TYPES = ("arima_plus",)
    options: ModelOptions
    series: list[Series] = field(default_factory=list)
    id_types: list[str] = field(default_factory=list)
    training: list = field(default_factory=list)

    # -- fitting ---------------------------------------------------------------------------------

    @classmethod
    def fit(cls, table: pa.Table, options: ModelOptions, transform=None) -> ArimaPlusModel:
        o = options
        named = {
            "time_series_timestamp_col": o.time_series_timestamp_col,
            "time_series_data_col": o.time_series_data_col,
        }
        named |= {f"time_series_id_col {c}": c for c in o.time_series_id_col}
        require_columns(table, named)
        if bigquery_type(table[o.time_series_data_col].type) not in NUMERIC_TYPES:
            raise ModelError(f"time_series_data_col {o.time_series_data_col} must be numeric.")
        times = _microseconds(table[o.time_series_timestamp_col], o.time_series_timestamp_col)
        values = table[o.time_series_data_col].to_numpy(zero_copy_only=False).astype(np.float64)
        keys = [table[c].to_pylist() for c in o.time_series_id_col]
        model = cls(o, id_types=[bigquery_type(table[c].type) for c in o.time_series_id_col])
        groups: dict[tuple, list[int]] = {}
        for index, key in enumerate(zip(*keys, strict=True) if keys else [()] * table.num_rows):
            groups.setdefault(key, []).append(index)
        if not groups:
            raise ModelError("the training query returned no rows.")
        for key, rows in sorted(groups.items(), key=lambda kv: tuple(str(k) for k in kv[0])):
            rows = np.asarray(rows)
            model.series.append(_fit_series(list(key), times[rows], values[rows], o))
        return model

    def summary(self) -> str:
        orders = {tuple(s.order) for s in self.series}
        shown = ", ".join(f"ARIMA{o}" for o in sorted(orders)[:3]) + (" ..." if len(orders) > 3 else "")
        return f"{len(self.series):,} time series, {sum(len(s.data) for s in self.series):,} points; {shown}"

    # -- the functions ---------------------------------------------------------------------------

    def _ids(self) -> list[tuple[str, str]]:
        return list(zip(self.options.time_series_id_col, self.id_types, strict=True))

    def _horizon(self, call: Call) -> tuple[int, float]:
        horizon = call.setting("horizon", 3)
        level = float(call.setting("confidence_level", 0.95))
        if not isinstance(horizon, int) or not 1 <= horizon <= self.options.horizon:
            raise MlSqlError(
                f"horizon must be an integer from 1 to the model's horizon ({self.options.horizon})."
            )
        if not 0 <= level < 1:
            raise MlSqlError("confidence_level must be at least 0 and less than 1.")
        return horizon, level

    def forecast(self, call: Call) -> str:
        horizon, level = self._horizon(call)
        z = _normal_quantile(0.5 + level / 2)
        rows = []
        for s in self.series:
            for k, when in enumerate(s.timestamps(len(s.data), horizon)):
                value, error = s.forecast[k], s.errors[k]
                low, high = value - z * error, value + z * error
                rows.append((*s.key, when, value, error, level, low, high, low, high))
        columns = [
            *self._ids(),
            ("forecast_timestamp", "TIMESTAMP"),
            ("forecast_value", "FLOAT64"),
            ("standard_error", "FLOAT64"),
            ("confidence_level", "FLOAT64"),
            ("prediction_interval_lower_bound", "FLOAT64"),
            ("prediction_interval_upper_bound", "FLOAT64"),
            ("confidence_interval_lower_bound", "FLOAT64"),
            ("confidence_interval_upper_bound", "FLOAT64"),
        ]
        return call.table(_arrow(columns, rows), columns)

    def explain_forecast(self, call: Call) -> str:
        horizon, level = self._horizon(call)
        z = _normal_quantile(0.5 + level / 2)
        rows = []
        for s in self.series:
            n = len(s.data)
            seasons = {name: s.seasonal.get(name) for name in SEASONAL_NAMES}
            for k, when in enumerate(s.timestamps(0, n)):
                season = sum(v[k] for v in s.seasonal.values() if v)
                trend = s.fitted[k] - season
                parts = [seasons[name][k] if seasons[name] else None for name in SEASONAL_NAMES]
                spike = s.data[k] - s.cleaned[k]
                rows.append(
                    (
                        *s.key,
                        when,
                        "history",
                        s.data[k],
                        s.cleaned[k],
                        None,
                        None,
                        None,
                        None,
                        trend,
                        *parts,
                        None,
                        spike,
                        None,
                        s.cleaned[k] - s.fitted[k],
                    )
                )
            for k, when in enumerate(s.timestamps(n, horizon)):
                parts = [seasons[name][n + k] if seasons[name] else None for name in SEASONAL_NAMES]
                value, error = s.forecast[k], s.errors[k]
                rows.append(
                    (
                        *s.key,
                        when,
                        "forecast",
                        value,
                        None,
                        error,
                        level,
                        value - z * error,
                        value + z * error,
                        s.trend_forecast[k],
                        *parts,
                        None,
                        None,
                        None,
                        None,
                    )
                )
        columns = [
            *self._ids(),
            ("time_series_timestamp", "TIMESTAMP"),
            ("time_series_type", "STRING"),
            ("time_series_data", "FLOAT64"),
            ("time_series_adjusted_data", "FLOAT64"),
            ("standard_error", "FLOAT64"),
            ("confidence_level", "FLOAT64"),
            ("prediction_interval_lower_bound", "FLOAT64"),
            ("prediction_interval_upper_bound", "FLOAT64"),
            ("trend", "FLOAT64"),
            *((f"seasonal_period_{name}", "FLOAT64") for name in SEASONAL_NAMES),
            ("holiday_effect", "FLOAT64"),
            ("spikes_and_dips", "FLOAT64"),
            ("step_changes", "FLOAT64"),
            ("residual", "FLOAT64"),
        ]
        return call.table(_arrow(columns, rows), columns)

    def arima_evaluate(self, call: Call) -> str:
        rows = [
            (
                *s.key,
                *s.order,
                s.has_drift,
                s.log_likelihood,
                s.aic,
                s.variance,
                sorted(s.seasonal, key=str),
                False,
                any(a != b for a, b in zip(s.data, s.cleaned, strict=True)),
                False,
                "",
            )
            for s in self.series
        ]
        columns = [
            *self._ids(),
            ("non_seasonal_p", "INT64"),
            ("non_seasonal_d", "INT64"),
            ("non_seasonal_q", "INT64"),
            ("has_drift", "BOOL"),
            ("log_likelihood", "FLOAT64"),
            ("AIC", "FLOAT64"),
            ("variance", "FLOAT64"),
            ("seasonal_periods", "ARRAY<STRING>"),
            ("has_holiday_effect", "BOOL"),
            ("has_spikes_and_dips", "BOOL"),
            ("has_step_changes", "BOOL"),
            ("error_message", "STRING"),
        ]
        return call.table(
            _arrow(columns, [(*r[:-5], [p.upper() for p in r[-5]], *r[-4:]) for r in rows]), columns
        )

    def detect_anomalies(self, call: Call) -> str:
        if call.input_sql is not None:
            raise MlSqlError(
                "local BigQuery ML detects anomalies in an ARIMA_PLUS model's training points only; call "
                "ML.DETECT_ANOMALIES(MODEL m, STRUCT(...)) without input rows."
            )
        threshold = float(call.setting("anomaly_prob_threshold", 0.95))
        if not 0 <= threshold < 1:
            raise MlSqlError("anomaly_prob_threshold must be at least 0 and less than 1.")
        z = _normal_quantile(0.5 + threshold / 2)
        rows = []
        for s in self.series:
            sigma = math.sqrt(s.variance) or 1e-12
            for k, when in enumerate(s.timestamps(0, len(s.data))):
                probability = 2 * _normal_cdf(abs(s.data[k] - s.fitted[k]) / sigma) - 1
                low, high = s.fitted[k] - z * sigma, s.fitted[k] + z * sigma
                rows.append((*s.key, when, s.data[k], probability > threshold, low, high, probability))
        o = self.options
        columns = [
            *self._ids(),
            (o.time_series_timestamp_col, "TIMESTAMP"),
            (o.time_series_data_col, "FLOAT64"),
            ("is_anomaly", "BOOL"),
            ("lower_bound", "FLOAT64"),
            ("upper_bound", "FLOAT64"),
            ("anomaly_probability", "FLOAT64"),
        ]
        return call.table(_arrow(columns, rows), columns)

    # -- artefact --------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "format": 2,
            "options": self.options.to_json(),
            "id_types": self.id_types,
            "series": [s.__dict__ for s in self.series],
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ArimaPlusModel:
        return cls(
            ModelOptions.from_json(raw["options"]), [Series(**s) for s in raw["series"]], raw["id_types"]
        )


# -- one series -----------------------------------------------------------------------------------


def _fit_series(key: list, times: np.ndarray, values: np.ndarray, o: ModelOptions) -> Series:
    name = ", ".join(map(str, key)) or "the series"
    order = np.argsort(times, kind="stable")
    times, values = times[order], values[order]
    keep = ~np.isnan(values)
    times, values = times[keep], values[keep]
    if len(times) < MIN_POINTS:
        raise ModelError(
            f"time series {name} has {len(times)} points; ARIMA_PLUS needs at least {MIN_POINTS} to fit a model."
        )
    if len(np.unique(times)) != len(times):
        raise ModelError(
            f"time series {name} has more than one point at the same timestamp; aggregate them first."
        )
    step = _STEPS.get(o.data_frequency, 0) * 1_000_000 or int(np.median(np.diff(times)))
    grid = np.arange(times[0], times[-1] + 1, step)
    data = np.interp(grid, times, values)
    cleaned = _clean(data) if o.clean_spikes_and_dips else data.copy()
    seasonal: dict[str, np.ndarray] = {}
    rest = cleaned.copy()
    if o.decompose_time_series:
        for season, period in _SEASONS.get(step // 1_000_000, []):
            component = _season(rest, period)
            if component is not None:
                seasonal[season.lower()] = component
                rest = rest - component[np.arange(len(rest)) % period]
    fit = _arima(rest, o, name)
    horizon = o.horizon
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ahead = fit.get_forecast(horizon)
        mean, errors = np.asarray(ahead.predicted_mean), np.asarray(ahead.se_mean)
        fitted = np.asarray(fit.fittedvalues)
    n = len(data)
    positions = np.arange(n + horizon)
    full = {s: c[positions % len(c)] for s, c in seasonal.items()}
    season_total = sum(full.values()) if full else np.zeros(n + horizon)
    if fit.model.order[1]:  # the first differences' fit starts from nothing: take the data there
        fitted[: fit.model.order[1]] = rest[: fit.model.order[1]]
    # The seasons were estimated from the same points: widen the errors by the residuals' variance per
    # degree of freedom left (the phase means and ARIMA terms used some), when it exceeds ARIMA's own.
    used = sum(len(c) for c in seasonal.values()) + sum(fit.model.order) + 1
    residuals = (rest - fitted)[fit.model.order[1] :]
    variance = float(np.sum(residuals**2) / max(len(residuals) - used, 1))
    errors = errors * math.sqrt(max(variance / float(fit.params[-1]), 1.0)) if fit.params[-1] > 0 else errors
    return Series(
        key=key,
        start=int(grid[0]),
        step=int(step),
        data=data.tolist(),
        cleaned=cleaned.tolist(),
        seasonal={s: c.tolist() for s, c in full.items()},
        fitted=(fitted + season_total[:n]).tolist(),
        order=list(fit.model.order),
        has_drift=bool(fit.model.trend not in (None, "n")),
        log_likelihood=float(fit.llf),
        aic=float(fit.aic),
        variance=max(variance, float(fit.params[-1])),
        forecast=(mean + season_total[n:]).tolist(),
        errors=errors.tolist(),
        trend_forecast=mean.tolist(),
    )


def _clean(data: np.ndarray) -> np.ndarray:
    """Spikes and dips (beyond 6 scaled MADs of a 7-point rolling median) replaced by that median."""
    if len(data) < 7:
        return data.copy()
    padded = np.pad(data, 3, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 7)
    median = np.median(windows, axis=1)
    deviation = np.abs(data - median)
    mad = 1.4826 * np.median(deviation) or 1e-12
    return np.where(deviation > 6 * mad, median, data)


def _season(values: np.ndarray, period: int) -> np.ndarray | None:
    """The mean of each phase around a centred moving average, if the series spans two periods and the
    component explains a tenth of the variance or more; else None."""
    if len(values) < 2 * period:
        return None
    window = np.ones(period) / period
    trend = np.convolve(values, window, mode="same")
    half = period // 2
    detrended = (values - trend)[half : len(values) - half]
    phases = (np.arange(len(values)) % period)[half : len(values) - half]
    component = np.bincount(phases, detrended, period) / np.maximum(np.bincount(phases, minlength=period), 1)
    component -= component.mean()
    total = np.var(values - trend)
    explained = np.var(component[np.arange(len(values)) % period])
    return component if total and explained / total >= 0.1 else None


def _arima(values: np.ndarray, o: ModelOptions, name: str):
    """The ARIMA fit of the deseasonalised series: auto (KPSS d, least-AIC p and q) or non_seasonal_order."""
    from statsmodels.tsa.arima.model import ARIMA
    from statsmodels.tsa.stattools import kpss

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if not o.auto_arima:
            p, d, q = o.non_seasonal_order
            if len(values) <= p + d + q + 1:
                raise ModelError(
                    f"time series {name} has {len(values)} points, too few for ARIMA({p}, {d}, {q})."
                )
            return ARIMA(values, order=(p, d, q), trend=_trend(d, o)).fit()
        d, differenced = 0, values
        while d < 2 and len(differenced) > 10 and np.std(differenced) > 0:
            if kpss(differenced, regression="c", nlags="auto")[1] >= 0.05:
                break
            d, differenced = d + 1, np.diff(differenced)
        best = None
        for p in range(4):
            for q in range(4):
                if p + q > o.auto_arima_max_order or len(values) <= p + d + q + 2:
                    continue
                try:
                    fit = ARIMA(values, order=(p, d, q), trend=_trend(d, o)).fit()
                except (ValueError, np.linalg.LinAlgError):
                    continue
                if best is None or fit.aic < best.aic:
                    best = fit
        if best is None:
            raise ModelError(f"time series {name} has {len(values)} points, too few for any ARIMA model.")
        return best


def _trend(d: int, o: ModelOptions) -> str:
    return "t" if d == 1 and o.include_drift else ("c" if d == 0 else "n")


def _microseconds(values: pa.ChunkedArray, column: str) -> np.ndarray:
    kind = bigquery_type(values.type)
    if kind not in ("TIMESTAMP", "DATETIME", "DATE"):
        raise ModelError(
            f"time_series_timestamp_col {column} must be a TIMESTAMP, DATETIME or DATE; it is {kind}."
        )
    if values.null_count:
        raise ModelError(f"time_series_timestamp_col {column} is NULL in {values.null_count} rows.")
    as_time = pc.cast(values, pa.timestamp("us")) if kind == "DATE" else values
    return pc.cast(as_time, pa.int64()).to_numpy(zero_copy_only=False)


def _arrow(columns: list[tuple[str, str]], rows: list[tuple]) -> pa.Table:
    arrow_types = {
        "TIMESTAMP": pa.timestamp("us", tz="UTC"),
        "FLOAT64": pa.float64(),
        "INT64": pa.int64(),
        "STRING": pa.string(),
        "BOOL": pa.bool_(),
        "ARRAY<STRING>": pa.list_(pa.string()),
    }
    data = list(zip(*rows, strict=True)) if rows else [[] for _ in columns]
    return pa.table(
        {
            name: pa.array(list(values), arrow_types.get(kind))
            for (name, kind), values in zip(columns, data, strict=True)
        }
    )


def _normal_quantile(p: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(p))


def _normal_cdf(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))
