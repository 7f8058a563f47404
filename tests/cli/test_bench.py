"""``perdure bench`` end to end, in tiny sizes: the JSON it prints, never its timings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from perdure._cli.bench import summarize

TOP_KEYS = {
    "system",
    "workload",
    "store",
    "durability",
    "params",
    "runs_n",
    "figures",
    "runs",
    "measured",
    "versions",
    "machine",
}


def perdure_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "perdure._cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def bench(*args: str) -> list[dict[str, Any]]:
    proc = perdure_cli("bench", *args)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stderr}"
    docs: list[dict[str, Any]] = [json.loads(line) for line in proc.stdout.splitlines()]
    return docs


def check_shape(doc: dict[str, Any], workload: str, positive: set[str]) -> None:
    assert doc.keys() >= TOP_KEYS
    assert doc["system"] == "perdure"
    assert doc["workload"] == workload
    assert doc["store"] == "sqlite"
    assert doc["durability"] == {"journal_mode": "wal", "synchronous": "FULL"}
    assert isinstance(doc["measured"], str)
    assert doc["measured"]
    assert doc["versions"]["perdure"]
    assert doc["versions"]["sqlite"]
    assert doc["machine"]["python"]
    assert doc["machine"]["platform"]
    assert doc["machine"]["cpu_count"] >= 1
    assert len(doc["runs"]) == doc["runs_n"]
    for figures in (doc["figures"], *doc["runs"]):
        for key in positive:
            value = figures[key]
            assert isinstance(value, (int, float)), (key, value)
            assert value > 0, (key, value)


def test_floor_prints_one_json_object_of_commit_times() -> None:
    [doc] = bench("floor", "--commits", "50", "--runs", "1")
    check_shape(doc, "floor", {"commits", "us_per_commit", "p50_us", "p99_us"})
    assert doc["params"] == {"commits": 50}


def test_steps_seq_reports_time_per_step_and_the_ratio_to_the_floor() -> None:
    [doc] = bench("steps-seq", "--steps", "50", "--floor-commits", "50", "--chunks", "3", "--runs", "1")
    check_shape(
        doc,
        "W1 steps-seq",
        {
            "us_per_step",
            "wall_s",
            "floor_us_per_commit",
            "ratio_to_floor",
            "ratio_chunk_min",
            "ratio_chunk_max",
        },
    )
    assert doc["params"] == {"steps": 50, "flavour": "async", "floor_commits": 50, "chunks": 3}
    figures = doc["figures"]
    assert figures["chunks"] == 3
    assert len(figures["chunk_ratios"]) == 3, "one run: its rounds' ratios are the figures'"
    # The ratio of the sums is a mean of the rounds' ratios (weighted by their floor time).
    assert figures["ratio_chunk_min"] <= figures["ratio_to_floor"] <= figures["ratio_chunk_max"]
    assert figures["ratio_chunk_min"] <= figures["ratio_chunk_median"] <= figures["ratio_chunk_max"]


def test_the_median_figures_hold_a_list_only_if_every_run_has_the_same() -> None:
    runs = [{"ratio": 1.0, "chunk_ratios": [1.0, 1.1], "per": [3]},
            {"ratio": 2.0, "chunk_ratios": [1.9, 2.1], "per": [3]},
            {"ratio": 4.0, "chunk_ratios": [3.0, 5.0], "per": [3]}]  # fmt: skip
    assert summarize(runs) == {"ratio": 2.0, "per": [3]}


def test_several_runs_report_the_median_and_every_run() -> None:
    [doc] = bench("floor", "--commits", "20", "--runs", "2")
    assert doc["runs_n"] == 2
    assert len(doc["runs"]) == 2
    assert doc["figures"]["commits"] == 20


def test_throughput_reports_both_flavours_by_default() -> None:
    docs = bench("throughput", "--workflows", "5", "--steps", "2", "--runs", "1")
    assert [d["params"]["flavour"] for d in docs] == ["async", "sync"]
    for doc in docs:
        check_shape(doc, "W2 throughput", {"wf_per_s", "steps_per_s", "wall_s", "peak_rss_mb"})
        assert doc["figures"]["bad_results"] == 0


def test_roundtrip_reports_latency_quantiles() -> None:
    [doc] = bench("roundtrip", "--iterations", "10", "--floor-commits", "20", "--runs", "1")
    check_shape(doc, "W3 roundtrip", {"p50_ms", "p99_ms", "floor_ms_per_commit", "p50_in_floor_commits"})


def test_recovery_after_sigkill_loses_no_workflow() -> None:
    # Slow steps leave the kill (at half the steps) far from the end of the first run.
    args = ("--workflows", "3", "--steps", "6", "--sleep-ms", "100", "--runs", "1")
    [doc] = bench("recovery", *args)
    check_shape(doc, "W4 recovery", {"restart_to_all_done_s", "steps_done_at_kill", "recovered_instances"})
    assert doc["figures"]["lost_workflows"] == 0
    assert doc["figures"]["missing_effects"] == 0


def test_replay_recovers_the_recorded_journal() -> None:
    [doc] = bench("replay", "--steps", "20", "--runs", "1")
    check_shape(doc, "W8 replay", {"open_to_first_new_step_ms", "spawn_to_first_new_step_ms"})
    assert doc["figures"]["journal_entries_before"] == 20
    assert doc["figures"]["status_before"] == "running"
    assert doc["figures"]["recoveries"] == 1


def test_actors_reports_calls_per_second_latency_and_exact_states() -> None:
    [doc] = bench("actors", "--actors", "300", "--random-calls", "30", "--resident", "50", "--runs", "1")
    check_shape(
        doc,
        "W6 actors",
        {"invocations_per_s", "random_p50_ms", "random_p99_ms", "rss_after_mb", "cpu_us_per_call"},
    )
    figures = doc["figures"]
    assert figures["bad_states"] == 0
    assert figures["actors_resident"] <= 50
    assert figures["actor_evictions"] >= 250  # 301 actors made, at most 50 kept


def test_an_existing_database_file_is_refused(tmp_path: Path) -> None:
    existing = tmp_path / "taken.db"
    existing.write_bytes(b"")
    proc = perdure_cli("bench", "floor", "--commits", "5", "--runs", "1", "--db", f"sqlite:///{existing}")
    assert proc.returncode == 2
    assert "exists" in proc.stderr


def test_help_lists_the_workloads() -> None:
    proc = perdure_cli("bench", "--help")
    assert proc.returncode == 0
    for name in ("floor", "steps-seq", "throughput", "roundtrip", "recovery", "replay", "sleepers", "actors"):
        assert name in proc.stdout
    assert "_once" not in proc.stdout


def test_bench_on_postgres_runs_each_workload_in_a_fresh_schema_and_drops_it(postgres_database: str) -> None:
    import psycopg

    postgres_url = postgres_database

    def schemas() -> set[str]:
        with psycopg.connect(postgres_url) as conn:
            rows = conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'perdure_bench_%'")
            return {r[0] for r in rows}

    (floor,) = bench("floor", "--commits", "5", "--runs", "1", "--db", postgres_url)
    (w1,) = bench("steps-seq", "--steps", "5", "--floor-commits", "5", "--runs", "1", "--db", postgres_url)
    (w2,) = bench(
        "throughput",
        "--workflows",
        "5",
        "--steps",
        "2",
        "--flavour",
        "async",
        "--runs",
        "1",
        "--db",
        postgres_url,
    )
    (w5,) = bench("sleepers", "--sleepers", "5", "--runs", "1", "--db", postgres_url)
    for doc in (floor, w1, w2, w5):
        assert doc["store"] == "postgres"
        assert doc["durability"]["synchronous_commit"] in {
            "on",
            "remote_apply",
            "remote_write",
            "local",
            "off",
        }
    assert floor["figures"]["us_per_commit"] > 0
    assert w1["figures"]["floor_us_per_commit"] > 0
    assert w2["figures"]["bad_results"] == 0
    assert schemas() == set(), "every run's schema is dropped"


def test_throughput_with_executor_processes_shares_the_work_on_postgres(postgres_url: str) -> None:
    (doc,) = bench(
        "throughput", "--workflows", "30", "--steps", "2", "--executors", "2", "--flavour", "async",
        "--runs", "1", "--db", postgres_url,
    )  # fmt: skip
    figures = doc["figures"]
    assert figures["executors"] == 2
    assert figures["bad_results"] == 0
    assert sum(figures["activations_per_executor"]) >= 31, "every workflow (and the warm-up) ran"
    assert figures["steps_per_s"] > 0


def test_throughput_with_executor_processes_needs_postgres(tmp_path: Path) -> None:
    proc = perdure_cli("bench", "throughput", "--executors", "2", "--db", f"sqlite:///{tmp_path / 'x.db'}")
    assert proc.returncode == 2
    assert "needs --db postgresql://" in proc.stderr
