"""The first hour of a new user (#13): names with aliases, unknown names, no database by accident.

Fast tier: no data mirror. Every ``main([...])`` call here is a real command with a bad or
aliased name; the ones on a missing warehouse check that no file was created.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pipelines.cli import names
from pipelines.cli.main import main
from pipelines.cli.quiet import add_global_flags, quiet_environment, version
from pipelines.errors import CascadeError, UnknownNameError
from pipelines.orchestration import local_server


def test_static_name_tables_match_the_registries() -> None:
    from backtest import POLICY_NAMES, PRESETS
    from forecasting.models import MODELS

    assert names.POLICY_NAMES == tuple(POLICY_NAMES)
    assert names.POLICY_PRESETS == tuple(PRESETS)
    assert names.MODEL_NAMES == tuple(MODELS)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("dutch", ("dutch_auction", None)),
        ("breaker", ("circuit_breaker", None)),
        ("buffer", ("liquidity_buffer", None)),
        ("dynLTV", ("dynamic_ltv", None)),
        ("dynltv", ("dynamic_ltv", None)),
        ("dynLTV+dutch", ("dynamic_ltv+dutch_auction", None)),
        ("dynLTV:garch", ("dynamic_ltv", "garch")),
        ("Dutch_Auction", ("dutch_auction", None)),
        ("instant", ("instant", None)),
        ("dutch_auction@gauntlet", ("dutch_auction@gauntlet", None)),
    ],
)
def test_policy_aliases(typed: str, expected: tuple[str, str | None]) -> None:
    assert names.resolve_policy(typed) == expected


def test_every_scoreboard_label_is_accepted() -> None:
    from pipelines.reporting.labels import SHORT_LABELS

    for policy, label in SHORT_LABELS.items():
        assert names.resolve_policy(label)[0] == policy


def test_event_labels_and_unknown_names() -> None:
    assert names.resolve_event("w4") == names.resolve_event("W4")
    with pytest.raises(UnknownNameError, match=r"W1 = .*W7 = "):
        names.resolve_event("W9")
    with pytest.raises(UnknownNameError, match="dutch = dutch_auction"):
        names.resolve_policy("dutchy")
    with pytest.raises(UnknownNameError, match="ewma, garch"):
        names.resolve_model("gorch")


def _exit_2(argv: list[str], capsys) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    _out, err = capsys.readouterr()
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["backtest", "--event", "W4", "--policy", "dutchy"], "breaker = circuit_breaker"),
        (["backtest", "--event", "W9"], "W4 = "),
        (["backtest", "--sweep", "--event", "W9"], "W4 = "),
        (["backtest", "--event", "W4", "--forecast-model", "gorch"], "known models"),
        (["forecast", "--models", "ewma,gorch"], "known models"),
        (["forecast", "--events", "W0"], "W1 = "),
        (["run", "--policy", "nope"], "dynLTV = dynamic_ltv"),
        (["run", "--event", "W8"], "W7 = "),
    ],
)
def test_unknown_names_exit_2_listing_known_and_create_nothing(
    argv: list[str], needle: str, tmp_path: Path, capsys
) -> None:
    db = tmp_path / "nothing.duckdb"
    line = _exit_2([argv[0], "--db", str(db), *argv[1:]], capsys)
    assert needle in line
    assert not db.exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["backtest", "--event", "W4", "--policy", "instant", "--json"],
        ["backtest", "--sweep", "--event", "W4"],
        ["report"],
        ["report", "--markdown", "md"],
        ["export", "out"],
        ["forecast", "--models", "ewma"],
        ["status"],
    ],
)
def test_read_commands_never_create_a_database(argv: list[str], tmp_path: Path, capsys) -> None:
    db = tmp_path / "wrong-folder" / "cascade.duckdb"
    line = _exit_2([argv[0], "--db", str(db), *argv[1:]], capsys)
    assert str(db) in line and "cascade run" in line and f"cascade {argv[0]}" in line
    assert not db.exists() and not db.parent.exists()


def test_scoreboard_label_runs_a_user_backtest(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("CASCADE_HOME", str(tmp_path / "home"))
    book = tmp_path / "book.csv"
    book.write_text(
        "position_id,collateral_asset,collateral,debt,liquidation_threshold\n"
        "1,ETH,10,10000,0.8\n2,ETH,5,2000,0.8\n"
    )
    prices = tmp_path / "p.csv"
    ts = np.datetime64("2024-01-01T00:00", "ms") + np.arange(30) * np.timedelta64(60_000, "ms")
    pl.DataFrame({"ts": ts, "price": np.linspace(2_000, 1_500, 30)}).write_csv(prices)
    db = tmp_path / "w.duckdb"
    argv = ["backtest", "--db", str(db), "--book", str(book), "--prices", str(prices)]
    capsys.readouterr()
    assert main([*argv, "--impact", "none", "--policy", "breaker", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["policy"] == "circuit_breaker"

    from pipelines.cli.status import last_pipeline_run, record_pipeline_run

    assert main(["status", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"backtest runs\s+1\b", out), out
    assert "none recorded" in out and "prefect server    none yet" in out
    record_pipeline_run(db, 12.5, {"ingest": 2.0, "report": 1.0})
    assert last_pipeline_run(db)["seconds"] == 12.5
    assert main(["status", "--db", str(db)]) == 0
    assert "in 12.5 s (ingest 2.0 s, report 1.0 s)" in capsys.readouterr().out


def test_quiet_environment_and_version(monkeypatch) -> None:
    env: dict[str, str] = {"DO_NOT_TRACK": "0", "PREFECT_LOGGING_LEVEL": "DEBUG"}
    quiet_environment(env=env)
    assert env["DO_NOT_TRACK"] == "1" and env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert env["PREFECT_LOGGING_LEVEL"] == "DEBUG"  # a user's explicit choice wins
    assert env["PREFECT_LOGGING_LOGGERS_PREFECT_LEVEL"] == "WARNING"
    loud: dict[str, str] = {}
    quiet_environment(verbose=True, env=loud)
    assert loud["PREFECT_LOGGING_LEVEL"] == "INFO"
    parser = argparse.ArgumentParser(prog="cascade")
    add_global_flags(parser)
    assert parser.parse_args(["--verbose"]).verbose
    with pytest.raises(SystemExit) as stop:
        parser.parse_args(["--version"])
    assert stop.value.code == 0
    assert version()


def test_prefect_api_choice(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CASCADE_HOME", str(tmp_path))
    assert local_server.server_dir() == tmp_path / "prefect-server"
    assert local_server.server_status() == (None, False)
    port = local_server.free_port()  # nothing listens there
    dead = {"PREFECT_API_URL": f"http://127.0.0.1:{port}/api"}
    with pytest.raises(CascadeError, match="does not answer"):
        local_server.ensure_prefect_api(dead)
    assert local_server.ensure_prefect_api({"CASCADE_PREFECT": "ephemeral"}) == ("ephemeral", "")
    with pytest.raises(CascadeError, match="'local'"):
        local_server.ensure_prefect_api({"CASCADE_PREFECT": "cloud"})
    assert local_server.stop_server() is None
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(
        f'active = "mine"\n[profiles.mine]\nPREFECT_API_URL = "http://127.0.0.1:{port}/api"\n'
    )
    from_profile = {"PREFECT_PROFILES_PATH": str(profiles)}
    assert local_server.profile_api_url(from_profile) == f"http://127.0.0.1:{port}/api"
    with pytest.raises(CascadeError, match="does not answer"):  # the profile's server, not ours
        local_server.ensure_prefect_api(from_profile)


def test_light_default_db_path_matches_the_warehouse(monkeypatch) -> None:
    from pipelines.warehouse.connection import default_db_path

    assert names.default_db_path() == default_db_path()
    monkeypatch.setenv("CASCADE_DB", "/x/y.duckdb")
    assert names.default_db_path() == default_db_path() == Path("/x/y.duckdb")
