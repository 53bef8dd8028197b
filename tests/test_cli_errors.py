"""One error root, one exit code: every user error of the CLI is one line ``error: ...``, exit 2.

Real commands with bad arguments first (no data mirror needed: a user's book and price files
and a fresh warehouse), then every error class of both libraries through ``main``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

import backtest.errors as backtest_errors
import forecasting.errors as forecasting_errors
from pipelines.cli import registry
from pipelines.cli.main import flag_message, main
from pipelines.errors import CascadeError, LibraryError, as_cascade_error


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, str]:
    book = tmp_path / "book.csv"
    book.write_text(
        "position_id,collateral_asset,collateral,debt,liquidation_threshold\n"
        "1,ETH,10,10000,0.8\n2,ETH,5,2000,0.8\n"
    )
    prices = tmp_path / "p.csv"
    ts = np.datetime64("2024-01-01T00:00", "ms") + np.arange(30) * np.timedelta64(60_000, "ms")
    pl.DataFrame({"ts": ts, "price": np.linspace(2_000, 1_500, 30)}).write_csv(prices)
    return {"db": str(tmp_path / "w.duckdb"), "book": str(book), "prices": str(prices)}


def _one_line_exit_2(argv: list[str], capsys) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert out == ""
    return lines[0]


def _backtest(files: dict[str, str], *extra: str) -> list[str]:
    return [
        "backtest",
        "--db",
        files["db"],
        "--book",
        files["book"],
        "--prices",
        files["prices"],
        *(() if "--impact" in extra else ("--impact", "none")),
        *extra,
    ]


@pytest.mark.parametrize(
    ("extra", "needle", "library_name"),
    [
        # PolicyConfigError (check_positive)
        (
            ("--policy", "dutch_auction", "--dust-usd", "-1"),
            "--dust-usd=-1.0 must be >= 0",
            "dust_usd",
        ),
        # PolicyConfigError (check_int)
        (
            ("--policy", "batch", "--interval-steps", "0"),
            "--interval-steps=0 must be",
            "interval_steps",
        ),
        # PolicyConfigError (check_fraction: the one fraction wording)
        (
            ("--close-factor", "1.5"),
            "--close-factor is 1.5, which looks like a multiplier (1 + x); give 0.5",
            "close_factor",
        ),
        (("--bonus", "5"), "--bonus is 5, which looks like a percent; give 0.05", "instant.bonus"),
        # ImpactConfigError
        (("--impact", "linear", "--depth-usd", "-5"), "--depth-usd=-5.0 must be > 0", "depth_usd"),
        # UnknownPolicyError
        (("--policy", "nope"), "unknown policy 'nope'", None),
        # CascadeError raised by the CLI itself
        (("--event", "W1", "--event", "W2"), "--event given 2 times", None),
    ],
)
def test_backtest_flag_errors_name_the_flag(files, capsys, extra, needle, library_name):
    line = _one_line_exit_2(_backtest(files, *extra), capsys)
    assert needle in line
    if library_name is not None:
        assert library_name not in line  # the library's name is mapped to the flag


def test_bad_book_file_is_one_line_with_file_column_row(files, tmp_path, capsys):
    bad = tmp_path / "bad_book.csv"
    bad.write_text(
        "position_id,collateral_asset,collateral,debt,liquidation_threshold\n"
        "1,ETH,10,10000,0.8\n2,ETH,5,2000,83\n"
    )
    argv = _backtest(files)
    argv[argv.index(files["book"])] = str(bad)
    line = _one_line_exit_2(argv, capsys)
    assert str(bad) in line and "'liquidation_threshold'" in line and "data row 2" in line
    assert "looks like a percent; give 0.83" in line


def test_bad_prices_file_and_missing_file(files, tmp_path, capsys):
    bad = tmp_path / "bad_prices.csv"
    bad.write_text("ts,price\n1704067200000,100\n1704067260,101\n")
    argv = _backtest(files)
    argv[argv.index(files["prices"])] = str(bad)
    line = _one_line_exit_2(argv, capsys)
    assert (
        "'ts'" in line and "data row 2" in line and "is in s while the first row is in ms" in line
    )
    argv[argv.index(str(bad))] = str(tmp_path / "nope.csv")
    assert "file does not exist" in _one_line_exit_2(argv, capsys)


def test_ingest_prices_parameter_and_file_errors(files, tmp_path, capsys):
    base = ["ingest-prices", "--db", files["db"], "--asset", "ETH"]
    line = _one_line_exit_2([*base, "--file", files["prices"], "--bar-seconds", "-5"], capsys)
    assert line == "error: --bar-seconds must be positive, got -5"
    line = _one_line_exit_2([*base, "--file", str(tmp_path / "nope.csv")], capsys)
    assert "nope.csv" in line and "file does not exist" in line


def _library_error_classes() -> list[type[BaseException]]:
    out: list[type[BaseException]] = []
    todo = [backtest_errors.BacktestError, forecasting_errors.ForecastingError]
    while todo:
        cls = todo.pop()
        out.append(cls)
        todo.extend(cls.__subclasses__())
    return sorted(set(out), key=lambda c: (c.__module__, c.__name__))


def _instance(cls: type[BaseException]) -> BaseException:
    if issubclass(cls, backtest_errors.BookValidationError):
        return cls("debt", 7, "is negative;\nkeep debts >= 0")
    if issubclass(cls, backtest_errors.StepTooCoarseError):
        return cls("batch", "interval_seconds", 30.0, 3600.0)
    if issubclass(cls, backtest_errors.PolicyParameterError):
        return cls("batch", ("dust_usd",), ("bonus", "interval_steps"))
    return cls("bad input:\nsee the docs")


@pytest.mark.parametrize("cls", _library_error_classes(), ids=lambda c: c.__name__)
def test_every_library_error_is_one_line_and_exit_2(cls, capsys, monkeypatch):
    """``main`` maps each library error class, raised by any handler, to one line and exit 2."""
    exc = _instance(cls)

    def handler(args):  # noqa: ANN001, ANN202 - stands for any command's handler
        raise exc

    configure, _handler, help_text = registry.COMMANDS["data-report"]
    monkeypatch.setitem(registry.COMMANDS, "data-report", (configure, handler, help_text))
    line = _one_line_exit_2(["data-report"], capsys)
    assert line.startswith("error: ") and str(exc).splitlines()[0] in line
    wrapped = as_cascade_error(exc)
    assert isinstance(wrapped, LibraryError) and wrapped.cause is exc
    if isinstance(exc, backtest_errors.BookValidationError):
        assert (wrapped.column, wrapped.row) == ("debt", 7)  # structured fields survive


def test_a_bug_is_one_line_with_its_traceback_in_a_log(monkeypatch, tmp_path, capsys):
    def handler(args):  # noqa: ANN001, ANN202
        raise ZeroDivisionError("a bug")

    configure, _handler, help_text = registry.COMMANDS["data-report"]
    monkeypatch.setitem(registry.COMMANDS, "data-report", (configure, handler, help_text))
    monkeypatch.setenv("CASCADE_LOG_DIR", str(tmp_path))
    capsys.readouterr()
    assert main(["data-report"]) == 1  # a bug: exit 1, not a user error's 2 (issue #14)
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "ZeroDivisionError: a bug" in err
    (log,) = tmp_path.glob("crash-*.log")
    assert "Traceback" in log.read_text() and str(log) in err
    assert as_cascade_error(ValueError("plain")) is None
    assert as_cascade_error(CascadeError("x")) is not None


def test_flag_message_maps_parameters_not_data():
    flags = {"dust_usd": "--dust-usd", "bonus": "--bonus", "history_days": "--history-days"}
    assert flag_message("dutch_auction.dust_usd=-1.0 must be >= 0", flags) == (
        "--dust-usd=-1.0 must be >= 0"
    )
    assert flag_message("history_days and min_train must be positive", flags).startswith(
        "--history-days and"
    )
    data = "file 'b.csv', column 'bonus', data row 2: value is 5, which looks like a percent"
    assert flag_message(data, flags) == data
    assert flag_message("bonus=5 must be < 1\nsee docs", flags) == "--bonus=5 must be < 1 see docs"
