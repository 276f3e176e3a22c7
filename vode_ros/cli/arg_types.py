"""argparse types that refuse a number out of its range at parse time, in argparse's own one-line
error ("vode demo: error: argument --rate: must be 0 or more, not -1"), before any work starts.
NaN and Inf are refused everywhere: no option of `vode` means anything with them."""
from __future__ import annotations

import argparse
import math
from typing import Callable


def number(kind: type = float, low: float | None = None, above: float | None = None,
           high: float | None = None) -> Callable[[str], float]:
    """A type for add_argument: `kind` (int or float), finite, >= `low`, > `above`, <= `high`."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'a whole number' if kind is int else 'a number'}, "
                                             f"not {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, not {text}")
        if low is not None and value < low:
            raise argparse.ArgumentTypeError(f"must be {low:g} or more, not {text}")
        if above is not None and value <= above:
            raise argparse.ArgumentTypeError(f"must be more than {above:g}, not {text}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be {high:g} or less, not {text}")
        return value
    parse.__name__ = kind.__name__      # argparse names the type in its messages
    return parse
