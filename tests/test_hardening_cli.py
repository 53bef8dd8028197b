"""Issue #14, fast tier: nothing gets in, nothing is overwritten, every failure is one line.

Each test drives the real ``cascade`` entry point (:func:`pipelines.cli.main.main`) on a fresh
warehouse and synthetic files, checks the outcome on disk, and records the command's answer for
``docs/faults.md`` (see ``tests/hardening_faults.py``). Each one failed on the behaviour the
issue describes.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest
from hardening_faults import flush, placeholder, record

from pipelines.catalog.names import check_name, safe_join
from pipelines.cli.main import main
from pipelines.errors import InvalidNameError, UnsafePathError
from pipelines.ingest.adapters.base import AdapterOutput, SourceEntry
from pipelines.ingest.load import load_source
from pipelines.warehouse.connection import compact, connect

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def _fault_table():
    yield
    flush()


@pytest.fixture()
def wh(tmp_path: Path) -> Path:
    """A fresh warehouse with the schema (no data)."""
    db = tmp_path / "w.duckdb"
    connect(db).close()
    placeholder(db, "W")
    placeholder(tmp_path, "TMP")
    return db


def _bars(n: int = 6, close: float = 100.0, start: datetime | None = None) -> pl.DataFrame:
    t0 = start or datetime(2024, 1, 1, tzinfo=UTC)
    ts = [(t0 + timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M:%SZ") for i in range(n)]
    c = [close + i for i in range(n)]
    return pl.DataFrame(
        {"ts": ts, "open": c, "high": [x + 1 for x in c], "low": [x - 1 for x in c], "close": c}
    ).with_columns(volume=pl.lit(1.0))


def _csv(path: Path, frame: pl.DataFrame | None = None, text: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if text is not None:
        path.write_text(text)
    else:
        (frame if frame is not None else _bars()).write_csv(path)
    return path


def run(argv: list[str], capsys, fault: str | None = None) -> tuple[int, str, str]:
    """Run ``cascade argv``; record it under ``fault``; return (code, stdout, stderr)."""
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    if fault is not None:
        first = (err.strip().splitlines() or out.strip().splitlines() or [""])[0]
        record(fault, "cascade " + " ".join(_show(a) for a in argv), code, first)
    return code, out, err


def _show(arg: object) -> str:
    text = str(arg)
    return repr(text) if (not text or any(c in text for c in " \n'\"")) else text


def one_line_2(argv: list[str], capsys, fault: str) -> str:
    code, out, err = run(argv, capsys, fault)
    lines = err.splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, out, err)
    return lines[0]


# --- 1. `cascade sql` is read-only for the machine --------------------------------------------


@pytest.mark.parametrize(
    ("fault", "query", "made"),
    [
        ("sql: COPY … TO an existing file", "COPY (SELECT 42) TO '{victim}'", None),
        ("sql: EXPORT DATABASE", "EXPORT DATABASE '{tmp}/exported'", "exported"),
        ("sql: INSTALL an extension", "INSTALL httpfs", None),
        ("sql: LOAD an extension", "LOAD httpfs", None),
        ("sql: ATTACH another database", "ATTACH '{tmp}/other.duckdb' AS o", "other.duckdb"),
        ("sql: SET external access back on", "SET enable_external_access = true", None),
        ("sql: unlock the configuration", "SET lock_configuration = false", None),
        ("sql: read another file", "SELECT * FROM read_csv('{victim}')", None),
        ("sql: write to the warehouse", "CREATE TABLE t AS SELECT 1", None),
    ],
)
def test_sql_cannot_touch_the_machine(wh, tmp_path, capsys, fault, query, made):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    line = one_line_2(["sql", "--db", wh, query.format(victim=victim, tmp=tmp_path)], capsys, fault)
    assert line.startswith("error: SQL error:")
    assert victim.read_text() == "precious\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    if made:
        assert not (tmp_path / made).exists()


def test_sql_prints_every_type_in_every_format(wh, capsys):
    query = (
        "SELECT INTERVAL 1 DAY AS i, union_value(k := 1) AS u, [1, 2] AS l, {'a': 1} AS s, "
        "map([1], [2]) AS m, 'ab'::BLOB AS b"
    )
    for fmt in ("csv", "json", "table"):
        code, out, err = run(
            ["sql", "--db", wh, query, "--format", fmt],
            capsys,
            f"sql: INTERVAL, UNION, nested, BLOB as {fmt}",
        )
        assert code == 0 and err == "", err
        assert "1 day" in out


def test_connections_never_auto_install_extensions(wh):
    con = connect(wh, read_only=True)
    try:
        value = con.execute("SELECT current_setting('autoinstall_known_extensions')").fetchone()
    finally:
        con.close()
    assert value == (False,)


def test_a_sqlite_file_as_warehouse_is_refused_without_a_download(tmp_path, capsys):
    import sqlite3

    lite = tmp_path / "lite.db"
    sqlite3.connect(lite).execute("CREATE TABLE t (a)").connection.close()
    placeholder(lite, "F")
    line = one_line_2(["sql", "--db", lite, "SELECT 1"], capsys, "a SQLite file as the warehouse")
    assert "not a DuckDB warehouse" in line and "lock" not in line


# --- 2. names and paths -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "flag", "value"),
    [
        ("asset name: empty", "--asset", ""),
        ("asset name: blank", "--asset", "   "),
        ("asset name: newline", "--asset", "ETH\nBTC"),
        ("asset name: path traversal", "--asset", "Q/../../../../elsewhere/pwned"),
        ("asset name: ..", "--asset", ".."),
        ("asset name: leading dot", "--asset", ".hidden"),
        ("asset name: 33 characters", "--asset", "A" * 33),
        ("venue name: slash", "--venue", "a/b"),
        ("venue name: colon (user: is reserved)", "--venue", "user:x"),
    ],
)
def test_bad_names_exit_2_and_load_nothing(wh, tmp_path, capsys, fault, flag, value):
    f = _csv(tmp_path / "bars.csv")
    placeholder(f, "F")
    argv = ["ingest-prices", "--db", wh, "--file", f, "--asset", "ETH"]
    argv[argv.index(flag) + 1 if flag in argv else len(argv) :] = (
        [value] if flag in argv else [flag, value]
    )
    line = one_line_2(argv, capsys, fault)
    assert "invalid" in line and "name" in line
    con = duckdb.connect(str(wh), read_only=True)
    assert con.execute("SELECT count(*) FROM raw_prices").fetchone() == (0,)
    con.close()


def test_name_rule_and_safe_join(tmp_path):
    assert check_name("asset", "ETH-USD_1.x") == "ETH-USD_1.x"
    for bad in ("", " ", "a b", "a\n", "../x", "a/b", ".x", "x" * 33, None):
        with pytest.raises(InvalidNameError):
            check_name("asset", bad)
    assert safe_join(tmp_path, "forecast_ETH.png") == tmp_path / "forecast_ETH.png"
    for bad in ("../x.png", "/etc/passwd", "..", "", "a/../../x"):
        with pytest.raises(UnsafePathError):
            safe_join(tmp_path, bad)


# --- 3. user data never shadows registry data silently -----------------------------------------


def _registry_bars(db: Path, close: float = 2524.38) -> None:
    """Load bars as a registry source would (priority 50, venue binance), through load_source."""
    frame = _bars(6, close).with_columns(
        pl.col("ts").str.to_datetime(time_zone="UTC", time_unit="us"),
        asset=pl.lit("ETH"),
        market=pl.lit("spot"),
        venue=pl.lit("binance"),
        bar_seconds=pl.lit(3600),
    )
    entry = SourceEntry(
        name="registry/binance-eth-1h", file="x", origin_repo="o", commit="c", path="p",
        url="u", sha256="0" * 64, bytes=1, format="csv", adapter="ohlcv", params={}, priority=50,
    )  # fmt: skip
    con = connect(db)
    try:
        load_source(
            con, entry, AdapterOutput(tables={"prices": frame}), sha256="0", adapter_version="t"
        )
    finally:
        con.close()


def _closes(db: Path, venue: str) -> list[float]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(
            "SELECT close FROM prices WHERE asset = 'ETH' AND venue = ? ORDER BY ts", [venue]
        ).fetchall()
    finally:
        con.close()
    return [r[0] for r in rows]


def test_user_bars_do_not_replace_registry_bars(wh, tmp_path, capsys):
    _registry_bars(wh)
    real = _closes(wh, "binance")
    f = _csv(tmp_path / "mine.csv", _bars(5, 101.0))
    placeholder(f, "F")
    code, out, _ = run(
        ["ingest-prices", "--db", wh, "--file", f, "--asset", "ETH", "--venue", "Binance"],
        capsys,
        "user bars for a registry venue (no --override)",
    )
    assert code == 0 and "user:binance" in out
    assert _closes(wh, "binance") == real
    assert _closes(wh, "user:binance") == [101.0, 102.0, 103.0, 104.0, 105.0]


def test_override_is_explicit_and_recorded(wh, tmp_path, capsys):
    _registry_bars(wh)
    f = _csv(tmp_path / "mine.csv", _bars(5, 101.0))
    placeholder(f, "F")
    argv = ["ingest-prices", "--db", wh, "--file", f, "--asset", "ETH", "--venue", "binance"]
    code, out, _ = run([*argv, "--override"], capsys, "user bars with --override")
    assert code == 0 and "--override" in out
    assert _closes(wh, "binance") == [101.0, 102.0, 103.0, 104.0, 105.0, 2529.38]
    con = duckdb.connect(str(wh), read_only=True)
    sources = con.execute(
        "SELECT DISTINCT source FROM prices WHERE venue = 'binance' ORDER BY 1"
    ).fetchall()
    con.close()
    assert sources == [("registry/binance-eth-1h",), ("user-override/ETH/spot/binance/3600s",)]


def test_same_logical_source_is_replaced_with_a_count(wh, tmp_path, capsys):
    first = _csv(tmp_path / "a" / "bars.csv", _bars(6, 100.0))
    other = _csv(tmp_path / "b" / "bars.csv", _bars(3, 500.0, datetime(2024, 2, 1, tzinfo=UTC)))
    placeholder(other, "F")
    base = ["ingest-prices", "--db", wh, "--asset", "ETH"]
    assert run([*base, "--file", first], capsys)[0] == 0
    code, out, _ = run(
        [*base, "--file", other], capsys, "same asset/market/venue/bar from another file"
    )
    assert code == 0
    assert (
        out.splitlines()[0]
        == "replaced 6 bars previously loaded as source 'user/ETH/spot/user/3600s'"
    )
    assert _closes(wh, "user") == [500.0, 501.0, 502.0]


def test_header_only_file_is_an_error_and_keeps_the_bars(wh, tmp_path, capsys):
    base = ["ingest-prices", "--db", wh, "--asset", "ETH", "--bar-seconds", "3600"]
    assert run([*base, "--file", _csv(tmp_path / "a.csv")], capsys)[0] == 0
    empty = _csv(tmp_path / "empty.csv", text="ts,open,high,low,close,volume\n")
    placeholder(empty, "F")
    line = one_line_2([*base, "--file", empty], capsys, "header-only file")
    assert "no bars" in line
    assert len(_closes(wh, "user")) == 6


# --- 5. one error boundary ----------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "-5", "3000000000"])
def test_bar_seconds_out_of_range(wh, tmp_path, capsys, value):
    f = _csv(tmp_path / "bars.csv")
    placeholder(f, "F")
    argv = ["ingest-prices", "--db", wh, "--file", f, "--asset", "ETH", "--bar-seconds", value]
    line = one_line_2(argv, capsys, f"--bar-seconds {value}")
    assert "--bar-seconds must be" in line


def test_bad_argument_type_is_one_line(wh, capsys):
    argv = [
        "ingest-prices",
        "--db",
        str(wh),
        "--file",
        "x.csv",
        "--asset",
        "E",
        "--bar-seconds",
        "abc",
    ]
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    record(
        "--bar-seconds abc (not a number)", "cascade " + " ".join(argv), exit_info.value.code, err
    )
    assert exit_info.value.code == 2 and len(err.splitlines()) == 1 and "invalid int" in err


@pytest.mark.parametrize(
    ("fault", "text", "needle"),
    [
        ("header close,Close", "ts,open,high,low,close,Close\n2024-01-01,1,1,1,1,1\n", "twice"),
        ("Latin-1 file", None, "line 3"),
    ],
)
def test_bad_user_files_are_one_line(wh, tmp_path, capsys, fault, text, needle):
    f = tmp_path / "bad.csv"
    if text is None:
        f.write_bytes(
            b"ts,open,high,low,close\n2024-01-01T00:00:00Z,1,1,1,1\n"
            b"2024-01-01T01:00:00Z,1,1,1,1 caf\xe9\n"
        )
    else:
        f.write_text(text)
    placeholder(f, "F")
    line = one_line_2(["ingest-prices", "--db", wh, "--file", f, "--asset", "ETH"], capsys, fault)
    assert needle in line


@pytest.mark.parametrize("kind", ["parquet", "truncated", "directory", "text"])
def test_bad_warehouse_files_are_one_line_without_lock_hint(tmp_path, capsys, kind):
    db = tmp_path / f"bad-{kind}"
    if kind == "parquet":
        pl.DataFrame({"a": [1]}).write_parquet(db)
    elif kind == "truncated":
        good = tmp_path / "good.duckdb"
        connect(good).close()
        db.write_bytes(good.read_bytes()[:5000])
    elif kind == "directory":
        db.mkdir()
    else:
        db.write_text("hello\n")
    placeholder(db, "W")
    placeholder(tmp_path, "TMP")
    what = {"parquet": "a Parquet file", "truncated": "a truncated database"}.get(kind, f"a {kind}")
    line = one_line_2(["sql", "--db", db, "SELECT 1"], capsys, f"warehouse is {what}")
    assert "one writer" not in line and "cascade export" not in line
    line = one_line_2(
        ["ingest-prices", "--db", db, "--file", _csv(tmp_path / "b.csv"), "--asset", "ETH"],
        capsys,
        f"writing into a warehouse that is {what}",
    )
    assert "one writer" not in line


def test_lock_hint_only_when_another_process_writes(wh, tmp_path, capsys):
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import duckdb, sys, time
            con = duckdb.connect({str(wh)!r})
            print("ready", flush=True)
            time.sleep(120)
        """)],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "ready"
        line = one_line_2(["sql", "--db", wh, "SELECT 1"], capsys, "warehouse locked by a writer")
        assert "another process" in line
    finally:
        holder.kill()
        holder.wait()


def test_output_folder_that_cannot_be_made(wh, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    line = one_line_2(
        ["export", "--db", wh, blocker / "out"], capsys, "export into a folder under a file"
    )
    assert "not a directory" in line


def test_disk_full_is_one_line(tmp_path):
    """A real write failure: the command runs with a 16 KiB file-size limit (RLIMIT_FSIZE)."""
    f = _csv(tmp_path / "bars.csv")
    db = tmp_path / "w.duckdb"
    placeholder(f, "F")
    placeholder(db, "W")
    placeholder(tmp_path, "TMP")

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024, 16 * 1024))

    argv = ["ingest-prices", "--db", str(db), "--file", str(f), "--asset", "ETH"]
    code = "import sys; from pipelines.cli.main import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code, *argv],
        preexec_fn=limit,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    lines = done.stderr.strip().splitlines()
    record(
        "disk full (16 KiB file-size limit)",
        "cascade " + " ".join(argv),
        done.returncode,
        lines[0] if lines else "",
    )
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), done.stderr


def test_unknown_source_is_an_error(wh, capsys):
    line = one_line_2(
        ["ingest", "--db", wh, "--source", "no/such/source"], capsys, "ingest --source unknown"
    )
    assert "unknown source" in line


def test_unexpected_errors_are_one_line_with_a_log(wh, tmp_path, capsys, monkeypatch):
    from pipelines.cli.registry import COMMANDS, command

    monkeypatch.setenv("CASCADE_LOG_DIR", str(tmp_path / "logs"))

    @command("boom-test", "raises a bug")
    def _boom(args):
        return 1 // 0

    try:
        code, _, err = run(
            ["boom-test", "--db", wh], capsys, "a bug (ZeroDivisionError) in a command"
        )
        assert code == 1 and len(err.splitlines()) == 1 and "ZeroDivisionError" in err
        logs = list((tmp_path / "logs").glob("crash-*.log"))
        assert len(logs) == 1 and "Traceback" in logs[0].read_text()
        code, _, err = run(["boom-test", "--db", wh, "--debug"], capsys)
        assert code == 1 and "Traceback (most recent call last)" in err
    finally:
        COMMANDS.pop("boom-test")


# --- 7. compaction ------------------------------------------------------------------------------


def test_reloads_leave_the_file_compact(tmp_path, capsys):
    db = tmp_path / "w.duckdb"
    big = _csv(tmp_path / "big.csv", _bars(150_000, 100.0))
    base = ["ingest-prices", "--db", db, "--file", big, "--asset", "ETH"]
    assert run(base, capsys)[0] == 0
    first = db.stat().st_size
    for _ in range(3):
        assert run(base, capsys)[0] == 0
    assert db.stat().st_size <= first * 1.2, (first, db.stat().st_size)
    assert _closes(db, "user")[:2] == [100.0, 101.0]
    assert compact(db) is False  # nothing left to reclaim


def test_reader_closing_the_pipe_is_not_an_error(wh):
    code = "import sys; from pipelines.cli.main import main; sys.exit(main(sys.argv[1:]))"
    argv = ["sql", "--db", str(wh), "SELECT * FROM range(200000)", "--format", "csv"]
    proc = subprocess.Popen(
        [sys.executable, "-W", "ignore", "-c", code, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout.readline().strip() == b"range"
    proc.stdout.close()  # like `| head -1`
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=300) == 0 and err == "", err
    record(
        "the reader closes the pipe (`| head -1`)",
        "cascade " + " ".join(argv) + " | head -1",
        0,
        err or "(nothing on stderr)",
    )


def test_server_guard_stops_its_server_when_the_parent_is_killed():
    """The wrapper of Prefect's temporary server, on a stand-in server (``http.server``)."""
    import psutil

    parent_code = textwrap.dedent("""
        import os, subprocess, sys, time
        guard = [sys.executable, "-m", "pipelines.orchestration.server_guard", str(os.getpid())]
        server = ["-m", "http.server", "0", "--bind", "127.0.0.1"]
        child = subprocess.Popen([*guard, *server], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        print(child.pid, flush=True)
        time.sleep(600)
    """)
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_code],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    server = psutil.Process(int(parent.stdout.readline()))
    assert server.is_running()
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if server.status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.2)
    else:
        server.kill()
        pytest.fail("the guarded server outlived its parent by 10 s")


def test_cli_tables_are_plain_no_shape_or_dtype_rows(capsys) -> None:
    import polars as pl

    from pipelines.cli.registry import print_frame

    frame = pl.DataFrame({"event_id": ["a" * 120], "n": [1]})
    print_frame(frame)
    out = capsys.readouterr().out
    assert "shape:" not in out and "str" not in out and "i64" not in out
    assert "a" * 120 in out  # nothing truncated
    print_frame(frame, "markdown")
    assert capsys.readouterr().out.lstrip().startswith("|")
