"""A command keeps pandas out of its process: pyarrow would import it (0.17 s) at its first
conversion of values only to ask whether they are pandas objects; Spark lets it in again."""

import importlib.util
import subprocess
import sys
import textwrap

import pytest

from eventpipe.generate import generate_files

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("pandas") is None, reason="pandas is not installed: there is nothing to keep out"
)


def run_python(script: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_run_of_the_command_never_imports_pandas(tmp_path):
    source = generate_files(tmp_path / "events.csv", 2000, seed=4, dirty=True).files[0]
    warehouse = tmp_path / "warehouse"
    out = run_python(f"""
        import sys
        from eventpipe.cli.main import main
        sys.argv = ["eventpipe", "run", "-q", "-s", {str(source)!r}, "-w", {str(warehouse)!r}]
        try:
            main()
        except SystemExit as end:
            assert not end.code, end.code
        print("pandas imported:", "pandas" in sys.modules)
    """)
    assert out.splitlines()[-1] == "pandas imported: False"
    assert list((warehouse / "_reports").glob("*.html")), "the run, its report included, did not finish"


def test_pandas_kept_out_until_let_in():
    out = run_python("""
        from eventpipe.pandas_import import keep_pandas_out, let_pandas_in
        keep_pandas_out()
        import pyarrow as pa
        assert pa.table({"a": [1, None]}).column(0).to_pylist() == [1, None]
        try:
            import pandas
        except ImportError as refused:
            print("refused:", refused)
        let_pandas_in()
        import pandas
        print("converted:", pa.Table.from_pandas(pandas.DataFrame({"a": [1, 2]})).num_rows)
    """)
    assert out.splitlines() == ["refused: pandas is kept out of this eventpipe process", "converted: 2"]
