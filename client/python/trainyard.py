"""Report training metrics to Trainyard from a Python job (standard library only).

    import trainyard
    for step in range(steps):
        ...
        trainyard.log(step, loss=loss, val_acc=acc)

Each call appends one JSON line, ``{"step": 100, "loss": 0.31, "val_acc": 0.82}``,
to the file named by ``$TY_METRICS_FILE``, which the node agent follows and
turns into points of the job's metrics. Outside a Trainyard job (the variable
is unset) ``log`` does nothing, so the same script runs anywhere.

Values must be real numbers (int or float, not bool); a string or other type
raises TypeError, NaN or infinity raises ValueError, before anything is
written. Every line is flushed as it is written, so the points survive the
process being killed right after.
"""

import json
import math
import numbers
import os
import threading

__all__ = ["log", "enabled"]

_lock = threading.Lock()
_file = None
_path = None


def enabled():
    """True when running as a Trainyard job (``$TY_METRICS_FILE`` is set)."""
    return bool(os.environ.get("TY_METRICS_FILE"))


def _check(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            "trainyard.log: metric %r must be a number (int or float), not %s %r"
            % (name, type(value).__name__, value)
        )
    value = float(value) if not isinstance(value, int) else value
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("trainyard.log: metric %r is %r; only finite numbers are recorded" % (name, value))
    return value


def log(step, **values):
    """Record ``values`` (name=number) at training step ``step`` (an int).

    A no-op outside Trainyard. Raises TypeError for a non-integer step or a
    non-numeric value, ValueError for NaN/infinity or for no values at all.
    """
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise TypeError("trainyard.log: step must be an int, not %s %r" % (type(step).__name__, step))
    if not values:
        raise ValueError("trainyard.log: give at least one metric, e.g. trainyard.log(step, loss=0.3)")
    line = {"step": int(step)}
    for name, value in values.items():
        line[name] = _check(name, value)
    path = os.environ.get("TY_METRICS_FILE")
    if not path:
        return
    text = json.dumps(line, allow_nan=False, separators=(",", ":")) + "\n"
    global _file, _path
    with _lock:
        if _file is None or _path != path:
            if _file is not None:
                _file.close()
            # Unbuffered binary append: each line is one write(), never split.
            _file = open(path, "ab", buffering=0)
            _path = path
        _file.write(text.encode("utf-8"))
