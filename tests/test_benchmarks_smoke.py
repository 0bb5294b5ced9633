"""The benchmarks still run: each main() with the smallest sizes. No timing is asserted here, ever
(figures live in docs/benchmarks.md); only that a run completes and its bookkeeping adds up."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    # On sys.path (not loaded from a file location) so a spawned server process can import it too.
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module(name)


def test_catalog_sync_runs(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    catalog_sync = load("catalog_sync", monkeypatch)

    summary = catalog_sync.main(
        ["--skus", "30", "--baseline-listings", "4", "--repeat", "1", "--latency-ms", "0,20"]
    )

    assert [case["latency_ms"] for case in summary["cases"]] == [0, 20]
    for case in summary["cases"]:
        assert case["requests"] == case["ideal_requests"] == 1
        assert case["throttled"] == 0
        assert case["out_of_sync"] == 0
        assert case["baseline_extrapolated"] is True
    out = capsys.readouterr().out
    assert "ratio baseline_time / nexus_time" in out
    assert "added network latency 20 ms per request" in out and "by latency (same run):" in out


def test_webhook_ingest_runs(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    webhook_ingest = load("webhook_ingest", monkeypatch)

    sizes = ["--deliveries", "12", "--clients", "3", "--warmup", "2", "--repeat", "1"]
    summary = webhook_ingest.main([*sizes, "--variants", "nexus,baseline", "--processing"])

    # main() checks that every delivery was answered "accepted" and stored exactly once.
    assert {"nexus", "baseline"} <= summary.keys() and summary["processing"] is True
    assert "ratio nexus / baseline throughput" in capsys.readouterr().out


@pytest.mark.postgres
def test_webhook_processing_runs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], postgres_admin_dsn: str
) -> None:
    webhook_processing = load("webhook_processing", monkeypatch)

    summary = webhook_processing.main(["--skus", "8", "--repeat", "1", "--postgres", postgres_admin_dsn])

    # main() checks that all 24 deliveries were processed and every item is at 9, in both variants.
    assert set(summary["medians"]) == {"sqlite", "postgres"}
    assert {(r["database"], r["variant"], r["deliveries"]) for r in summary["runs"]} == {
        (database, variant, 24) for database in ("sqlite", "postgres") for variant in ("nexus", "baseline")
    }
    assert "ratio nexus / baseline throughput" in capsys.readouterr().out


def test_webhook_ingest_httpx_client_and_reference_receivers_run(monkeypatch: pytest.MonkeyPatch) -> None:
    webhook_ingest = load("webhook_ingest", monkeypatch)

    sizes = ["--deliveries", "6", "--clients", "2", "--warmup", "0", "--repeat", "1"]
    summary = webhook_ingest.main(
        [*sizes, "--client", "httpx", "--variants", "ceiling,minimal,contract,drivers", "--tcp-nodelay"]
    )

    # main() checks that the reference receivers stored every delivery exactly once.
    assert summary["client"] == "httpx" and {"ceiling", "minimal", "contract", "drivers"} <= summary.keys()
    assert "nexus" not in summary and summary["minimal_share_of_ceiling"] > 0
    assert summary["contract_share_of_minimal"] > 0 and summary["drivers_share_of_contract"] > 0


async def test_the_contract_reference_refuses_a_body_over_the_limit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The reference keeps the receiver contract's 413 (README, "Webhooks: what the receiver
    # guarantees"), whether the length is declared or only found by reading.
    webhook_ingest = load("webhook_ingest", monkeypatch)
    reference = webhook_ingest._MinimalReceiver(str(tmp_path / "contract.db"), contract=True)
    path = f"/nexus/webhooks/{webhook_ingest.CHANNEL}"
    chunk = b"x" * 65_536

    async def undeclared() -> AsyncIterator[bytes]:
        for _ in range(webhook_ingest.MAX_BYTES // len(chunk) + 1):
            yield chunk

    transport = httpx.ASGITransport(app=reference.app())
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        declared = await client.post(path, content=b"x" * (webhook_ingest.MAX_BYTES + 1))
        streamed = await client.post(path, content=undeclared())
    assert (declared.status_code, streamed.status_code) == (413, 413)
    assert reference.stored() == 0


async def test_the_drivers_reference_answers_every_case_as_nexus_does(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`drivers` is a reference only while it does the driver's work. Each case here is answered
    the same by `drivers` and by Nexus's own route, and the first two differently by `contract`'s
    inline checks, so a `drivers` that stopped calling the driver would fail."""
    from nexus.channels.shopify.webhooks import compute_hmac
    from nexus.engine import Nexus
    from nexus.web import create_app

    webhook_ingest = load("webhook_ingest", monkeypatch)
    path = f"/nexus/webhooks/{webhook_ingest.CHANNEL}"
    deliveries = iter(webhook_ingest.make_deliveries(6, "drivers"))
    signature = "X-Shopify-Hmac-Sha256"

    def signed(body: bytes | None = None, /, **replaced: str) -> tuple[str, bytes, dict[str, str]]:
        """A delivery of its own (fresh ids), its body replaced and signed, headers replaced."""
        delivery = next(deliveries)
        body = delivery.body if body is None else body
        headers = {**delivery.headers, signature: compute_hmac(webhook_ingest.SECRET, body)}
        headers.update({name.replace("_", "-"): value for name, value in replaced.items()})
        return path, body, headers

    _, body, unprefixed = signed()
    unprefixed["Shopify-Hmac-Sha256"] = unprefixed.pop(signature)  # Shopify's newer spelling
    cases = {
        "signature without the X- prefix": (path, body, unprefixed),
        "available is a bool": signed(body.replace(b'"available":', b'"available":true,"was":')),
        "id over 255 characters": signed(X_Shopify_Webhook_Id="x" * 256),
        "forged signature": signed(**{signature.replace("-", "_"): compute_hmac("not-it", body)}),
        "not JSON": signed(b"{not json"),
        "unknown channel": ("/nexus/webhooks/no-such-channel", *signed()[1:]),
    }
    expected = {
        "signature without the X- prefix": 200,
        "available is a bool": 400,
        "id over 255 characters": 400,
        "forged signature": 401,
        "not JSON": 400,
        "unknown channel": 404,
    }

    async def answers(app: Any) -> dict[str, int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            return {
                case: (await client.post(url, content=content, headers=headers)).status_code
                for case, (url, content, headers) in cases.items()
            }

    async with Nexus(webhook_ingest.settings_for(str(tmp_path / "nexus.db")), source="test") as nexus:
        await nexus.migrate()
        nexus_app = create_app(nexus)
        nexus_app.state.webhook_processor.schedule = lambda receipt: None
        drivers = webhook_ingest.reference_receiver("drivers", str(tmp_path / "drivers.db"), nexus)
        inline = webhook_ingest.reference_receiver("contract", str(tmp_path / "contract.db"), nexus)
        assert drivers is not None and inline is not None
        assert await answers(nexus_app) == expected
        assert await answers(drivers.app()) == expected
        by_contract = await answers(inline.app())
    assert drivers.stored() == 1  # the one accepted case
    assert (by_contract["signature without the X- prefix"], by_contract["available is a bool"]) == (401, 200)


def test_ingest_instructions_runs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ingest_instructions = load("ingest_instructions", monkeypatch)

    # Without valgrind (a run under it takes ~40 s however small): the same drives, timed. Each
    # drive exits non-zero unless every delivery was answered "accepted" and stored once.
    sizes = ["--base", "2", "--deliveries", "4", "--clients", "2"]
    summary = ingest_instructions.main([*sizes, "--variants", "nexus,contract,drivers", "--no-valgrind"])

    assert set(summary["per_delivery"]) == {"nexus", "contract", "drivers"}
    assert set(summary["shares"]) == {"nexus/contract", "nexus/drivers", "drivers/contract"}
    assert "nexus at" in capsys.readouterr().out


def test_ingest_instructions_refuses_an_unknown_variant(monkeypatch: pytest.MonkeyPatch) -> None:
    ingest_instructions = load("ingest_instructions", monkeypatch)

    with pytest.raises(
        SystemExit, match="--variants takes some of nexus, contract, drivers, minimal, ceiling"
    ):
        ingest_instructions.main(["--variants", "nexus,fastest"])


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.redis
def test_rate_limit_utilisation_runs(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    postgres_admin_dsn: str,
    redis_server_url: str,
) -> None:
    rate_limit_utilisation = load("rate_limit_utilisation", monkeypatch)

    sizes = ["--skus", "60", "--duration", "1", "--processes", "1", "--concurrency", "1"]
    summary = rate_limit_utilisation.main(
        [*sizes, "--modes", "nexus,per-worker", "--postgres", postgres_admin_dsn, "--redis", redis_server_url]
    )

    runs = {run["mode"]: run for run in summary["runs"]}
    assert runs.keys() == {"nexus", "per-worker"}
    restore = 100 * summary["options"]["time_scale"]
    for run in runs.values():
        # A full bucket (2000 points) plus one second of restore, at 10 points a request.
        assert run["allowed"] == pytest.approx((2000 + restore) / 10)
        assert 0 < run["achieved"] <= run["allowed"]
        assert run["items_pushed"] > 0 and run["processes_that_pushed"] == 1
        # Whether 60 listings are all pushed within the 1 s window depends on the machine's load
        # (timing is never asserted here); that the flag agrees with the count does not.
        assert run["work_ran_out"] is (run["unpushed_at_end"] < 5)  # batch 5 x 1 round x 1 process
        assert run["throttled_total"] == 0
    assert summary["goal_met"] is False  # a measurement, reported, never an error
    out = capsys.readouterr().out
    assert "nexus / per-worker utilisation" in out and "-> FAIL" in out


def test_propagation_runs(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    propagation = load("propagation", monkeypatch)

    summary = propagation.main(["--rates", "4", "--duration", "1", "--drain", "20"])

    results = {result["variant"]: result for result in summary["results"]}
    assert results.keys() == {"nexus", "poll"}
    for result in results.values():
        assert result["sales"] == 4 and result["acked"] + result["missing"] == 4
        assert result["deliveries"] > 0
    out = capsys.readouterr().out
    assert "p99 ms" in out and "ratio poll / nexus" in out


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.redis
def test_propagation_scaled_mode_runs(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    postgres_admin_dsn: str,
    redis_server_url: str,
) -> None:
    propagation = load("propagation", monkeypatch)

    sizes = ["--rates", "4", "--duration", "1", "--drain", "20", "--workers", "2"]
    summary = propagation.main(
        [*sizes, "--modes", "scaled", "--postgres", postgres_admin_dsn, "--redis", redis_server_url]
    )

    results = {result["variant"]: result for result in summary["results"]}
    assert results.keys() == {"nexus", "poll"}
    for result in results.values():
        assert result["mode"] == "scaled"
        assert result["sales"] == 4 and result["acked"] + result["missing"] == 4
    assert "scaled 4 sales/s: ratio poll / nexus" in capsys.readouterr().out


def test_memory_runs(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    memory = load("memory", monkeypatch)

    summary = memory.main(["--skus", "20", "--sales", "6", "--sales-rate", "20", "--timeout", "60"])

    assert summary["listings"] == 80
    assert [phase["name"] for phase in summary["phases"]] == [
        "start",
        "items",
        "import",
        "serve",
        "sync",
        "sales",
    ]
    assert summary["peak_rss_mib"] > 0 and summary["facts"]["left_after_sync"] == (0, 0)
    out = capsys.readouterr().out
    assert "peak RSS" in out and "CPU per listing per channel" in out


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.redis
def test_scale_out_runs(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    postgres_admin_dsn: str,
    redis_server_url: str,
) -> None:
    scale_out = load("scale_out", monkeypatch)

    sizes = ["--channels", "2", "--skus", "40", "--processes", "1,2", "--warmup", "0", "--duration", "1"]
    summary = scale_out.main([*sizes, "--postgres", postgres_admin_dsn, "--redis", redis_server_url])

    runs = summary["runs"]
    assert [(run["trigger"], run["processes"]) for run in runs] == [
        ("batch", 1),
        ("dirty", 1),
        ("batch", 2),
        ("dirty", 2),
    ]
    for run in runs:
        assert run["throttled"] == 0
        # The stores' own count: what the window saw, never more than the catalog.
        assert 0 <= run["applied"] <= 2 * 40 and run["unpushed_at_end"] >= 0
        assert run["cpu_workers"] > 0 and run["trigger"] in ("batch", "dirty")
    out = capsys.readouterr().out
    assert "batch: ratio pushes/s against 1 process(es) in the same run" in out


def test_sns_verify_runs(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    sns_verify = load("sns_verify", monkeypatch)

    sizes = ["--deliveries", "8", "--clients", "2", "--repeat", "1", "--loop-work-us", "10"]
    summary = sns_verify.main(sizes)

    assert {run["variant"] for run in summary["runs"]} == {"thread", "inline"}
    assert all(run["deliveries"] == 8 for run in summary["runs"])
    assert "ratio thread / inline" in capsys.readouterr().out
