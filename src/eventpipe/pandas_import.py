"""Keeping pandas out of a process that does not use it.

pyarrow imports pandas, when it is installed, at its first conversion of values
(``pa.array``, ``pa.table``, ``to_pylist``), only to ask whether they are pandas
objects: 0.17 s of every command, a twentieth of a 100,000-event increment on a 10M
warehouse. eventpipe's own code never uses pandas; Spark's conversions do, and its
engine lets pandas in again (pyarrow then imports it when a conversion needs it).
"""

import sys
from importlib.abc import MetaPathFinder


class _Refused(MetaPathFinder):
    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError(f"{name} is kept out of this eventpipe process", name=name)


_REFUSED = _Refused()


def keep_pandas_out() -> None:
    """Until ``let_pandas_in``, importing pandas fails as if it were not installed (pyarrow
    then goes without it). Nothing changes where it is imported already."""
    if "pandas" not in sys.modules and _REFUSED not in sys.meta_path:
        sys.meta_path.insert(0, _REFUSED)


def let_pandas_in() -> None:
    """Importing pandas works again (for Spark)."""
    if _REFUSED in sys.meta_path:
        sys.meta_path.remove(_REFUSED)
