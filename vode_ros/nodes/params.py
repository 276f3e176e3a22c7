"""Declared parameters with their ranges or allowed values, checked at start-up and at run time.

Every parameter of the nodes is declared through :class:`ParameterTable`: its description,
range / choices go into the ParameterDescriptor (``ros2 param describe`` shows them), and one
``add_on_set_parameters_callback`` refuses a bad value with a reason naming the problem and
the way out. Good values are applied live by the appliers the node registers; the few that
cannot change while running (topics, QoS, mode) are refused with "restart" in the reason, so
``ros2 param get`` never shows a value the node does not use.

:func:`value_problem` is the pure check, testable without a node.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.exceptions import ParameterException
from rclpy.parameter import Parameter


class ParameterError(ValueError):
    """A parameter value from the parameter file or -p cannot be used (start-up error)."""


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: Any
    description: str
    low: float | None = None          # inclusive bounds of a number (or of each element of a list)
    high: float | None = None
    choices: tuple[str, ...] | None = None
    length: int | None = None         # exact length of an array parameter
    check: Callable[[Any], str | None] | None = None   # further check: the problem, or None
    live: bool = True                 # False: read at start-up only


def _number_problem(value: float, spec: ParamSpec) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    if spec.low is not None and value < spec.low:
        return f"must be >= {spec.low:g}"
    if spec.high is not None and value > spec.high:
        return f"must be <= {spec.high:g}"
    return None


def value_problem(spec: ParamSpec, value: Any) -> str | None:
    """Why `value` is not allowed for `spec` (one clause), or None."""
    if isinstance(spec.default, bool) != isinstance(value, bool):
        return f"must be true or false, like the default {spec.default!r}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        problem = _number_problem(value, spec)
        if problem:
            return problem
    if isinstance(value, str) and spec.choices is not None and value not in spec.choices:
        return f"use one of {', '.join(spec.choices)}"
    if isinstance(value, (list, tuple)):
        if spec.length is not None and len(value) != spec.length:
            return f"needs {spec.length} values, got {len(value)}"
        for v in value:
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                problem = _number_problem(v, spec)
                if problem:
                    return f"every value {problem} (got {v!r})"
    if spec.check is not None:
        return spec.check(value)
    return None


def _descriptor(spec: ParamSpec) -> ParameterDescriptor:
    d = ParameterDescriptor(description=spec.description)
    numeric = isinstance(spec.default, (int, float)) and not isinstance(spec.default, bool)
    if numeric and spec.low is not None and spec.high is not None:
        if isinstance(spec.default, int):
            d.integer_range = [IntegerRange(from_value=int(spec.low), to_value=int(spec.high), step=1)]
        else:
            d.floating_point_range = [FloatingPointRange(from_value=float(spec.low), to_value=float(spec.high),
                                                         step=0.0)]
    notes = []
    if spec.choices:
        notes.append(f"one of: {', '.join(spec.choices)}")
    if spec.length:
        notes.append(f"{spec.length} values")
    if not spec.live:
        notes.append("read at start-up: restart the node to change it")
    d.additional_constraints = "; ".join(notes)
    return d


class ParameterTable:
    """The parameters of one node: declaration, checks, live application."""

    def __init__(self, node, cross_check: Callable[[dict[str, Any]], str | None] | None = None):
        self.node = node
        self.specs: dict[str, ParamSpec] = {}
        self._appliers: list[tuple[frozenset[str], Callable[[dict[str, Any]], None]]] = []
        self._cross_check = cross_check
        self.running = False          # set once the node is built: from then on appliers run
        self._last_reason = ""
        node.add_pre_set_parameters_callback(self._pre_set)
        node.add_on_set_parameters_callback(self._on_set)

    def declare(self, spec: ParamSpec) -> Any:
        self.specs[spec.name] = spec
        try:
            return self.node.declare_parameter(spec.name, spec.default, _descriptor(spec)).value
        except ParameterException as exc:
            # rclpy's own range / type check may fire before ours: name the problem our way.
            given = getattr(self.node, "_parameter_overrides", {}).get(spec.name)
            problem = value_problem(spec, _plain(given.value)) if given is not None else None
            reason = self._last_reason or (f"parameter {spec.name}={_plain(given.value)!r}: {problem}" if problem
                                           else str(exc))
            self._last_reason = ""
            raise ParameterError(f"{reason} (from the parameter file or a -p {spec.name}:=... override)") from None

    def on_change(self, names: Iterable[str], apply: Callable[[dict[str, Any]], None]) -> None:
        """Call `apply({name: new value})` when any of `names` is set at run time.

        `apply` may raise ValueError (or any error with a clear message): the set is then refused
        with that message and the parameter keeps its value.
        """
        self._appliers.append((frozenset(names), apply))

    def stop(self) -> None:
        """The node was cleaned up (lifecycle): no appliers, and every value may change until the
        next configure, which reads them (and registers its appliers again)."""
        self.running = False
        self._appliers.clear()

    def value(self, name: str) -> Any:
        return self.node.get_parameter(name).value

    def _pre_set(self, params: list[Parameter]) -> list[Parameter]:
        # `ros2 param set ... scale 2` sends an integer; a double parameter would refuse it with
        # "Wrong parameter type": take whole numbers for double parameters.
        out = []
        for p in params:
            spec = self.specs.get(p.name)
            if spec is not None and isinstance(spec.default, float) and p.type_ == Parameter.Type.INTEGER:
                p = Parameter(p.name, Parameter.Type.DOUBLE, float(p.value))
            out.append(p)
        return out

    def _refuse(self, reason: str) -> SetParametersResult:
        self._last_reason = reason
        return SetParametersResult(successful=False, reason=reason)

    def _on_set(self, params: list[Parameter]) -> SetParametersResult:
        changes: dict[str, Any] = {}
        for p in params:
            spec = self.specs.get(p.name)
            if spec is None:          # not ours (use_sim_time, ...): rclpy's own checks apply
                continue
            value = list(p.value) if isinstance(p.value, (list, tuple)) or hasattr(p.value, "tolist") else p.value
            problem = value_problem(spec, value)
            if problem:
                return self._refuse(f"parameter {p.name}={value!r}: {problem}")
            if self.running and not spec.live and value != _plain(self.value(p.name)):
                return self._refuse(f"parameter {p.name} is read at start-up only: restart the node with "
                                    f"{p.name}:={value!r} to use it (or set it between lifecycle cleanup and "
                                    "configure)")
            changes[p.name] = value
        if self._cross_check is not None and changes and self.running:   # at start-up: after all are declared
            merged = {name: _plain(self.value(name)) for name in self.specs if self.node.has_parameter(name)}
            merged.update(changes)
            problem = self._cross_check(merged)
            if problem:
                return self._refuse(problem)
        if self.running:
            for names, apply in self._appliers:
                wanted = {k: v for k, v in changes.items() if k in names}
                if wanted:
                    try:
                        apply(wanted)
                    except Exception as exc:   # noqa: BLE001 - the reason goes back to the caller
                        return self._refuse(f"parameter {', '.join(wanted)} not applied: {exc}")
        return SetParametersResult(successful=True)


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) or hasattr(value, "tolist") else value
