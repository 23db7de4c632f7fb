"""Benching a service of one's own: requests with bodies, headers and queries, from a scenario or the command
line, against tests/bench_apps/orders.py (a JSON POST behind a bearer token, path and query parameters)."""

from __future__ import annotations

import json

import pytest

from asyncguard.bench.results import BenchResults
from asyncguard.bench.scenario import ScenarioError, load_scenario
from asyncguard.bench.server import Server
from test_bench import FAST, app_dir, bench, orphans  # noqa: F401 (app_dir: a fixture)

TOKEN = {"ORDERS_TOKEN": "s3cret", "BENCH_TOKEN": "s3cret"}


def test_a_scenario_posts_json_behind_an_auth_header_with_path_and_query_parameters(tmp_path, app_dir):
    scenario = tmp_path / "orders.toml"
    scenario.write_text(f"""
app = "orders:app"
app_dir = "{app_dir}"
health = "/health"
users = 2
warmup = 0.2
duration = 1
headers = {{ Authorization = "Bearer ${{BENCH_TOKEN}}" }}

[[endpoint]]
method = "POST"
path = "/shops/7/orders"
query = {{ express = true }}
json = {{ item = "pen", quantity = 2 }}
status = 201
keys = ["id", "express"]

[[endpoint]]
method = "GET"
path = "/shops/7/orders/1"
""")
    out = tmp_path / "orders"
    process = bench("--scenario", str(scenario), "--no-profile", "--out", str(out), env=TOKEN)
    assert process.returncode == 0, process.stderr
    create, read = BenchResults.load(out / "results.json").runs
    assert (create.name, read.name) == ("POST /shops/7/orders?express=True", "GET /shops/7/orders/1")
    assert create.requests > 10 and read.requests > 10 and create.failures == read.failures == 0


def test_the_command_line_sends_a_json_body_and_headers(tmp_path, app_dir):
    out = tmp_path / "cli"
    process = bench("orders:app", "--app-dir", str(app_dir), "--health", "/health",
                    "--endpoint", "POST /shops/3/orders?express=true", "--json", '{"item": "ink", "quantity": 1}',
                    "--endpoint", "GET /shops/3/orders/1", "-H", "Authorization: Bearer s3cret", *FAST,
                    "--out", str(out), env=TOKEN)
    assert process.returncode == 0, process.stderr
    runs = BenchResults.load(out / "results.json").runs
    assert [run.failures for run in runs] == [0, 0] and all(run.requests > 10 for run in runs)


def test_a_request_the_service_refuses_fails_validation_with_its_status(tmp_path, app_dir):
    process = bench("orders:app", "--app-dir", str(app_dir), "--health", "/health",
                    "--endpoint", "POST /shops/3/orders", "--json", '{"item": "ink", "quantity": 1}', *FAST,
                    "--out", str(tmp_path / "refused"), env=TOKEN)
    assert process.returncode == 1
    assert "HTTP 401, expected 2xx" in process.stderr + process.stdout


@pytest.mark.parametrize("args,message", [
    (["--json", "{}"], "--json describes the body of the --endpoint before it"),
    (["--endpoint", "POST /o", "--json", "{nope"], "--json for 'POST /o' is not JSON"),
    (["--endpoint", "POST /o", "--json", "{}", "--data", "x"], "given twice"),
    (["--endpoint", "POST /o", "--content-type", "text/csv"], "--content-type for 'POST /o' goes with --data"),
    (["--endpoint", "POST /o", "--data", "@/nonexistent/body.json"], "--data @/nonexistent/body.json: cannot read"),
    (["-H", "Authorization"], '--header takes "Name: value"'),
])
def test_request_flags_are_checked_before_anything_runs(args, message):
    process = bench("orders:app", *args, timeout=30)
    assert process.returncode == 2 and message in process.stderr and "Traceback" not in process.stderr
    assert len(process.stderr.splitlines()) == 1


@pytest.mark.parametrize("entry,message", [
    ('bdy = "x"', "endpoint 1: unknown key `bdy`"),
    ('weight = "3"', "endpoint 1: `weight`: Input should be a valid integer"),
    ('json = {}\nbody = "x"', "endpoint 1: give `json` or `body`, not both"),
    ('content_type = "text/csv"', "endpoint 1: `content_type` goes with `body`"),
    ("query = { a = { b = 1 } }", "endpoint 1: `query.a`: Input should be a valid string"),
    ('headers = { X = "${ASYNCGUARD_UNSET_VARIABLE}" }', "${ASYNCGUARD_UNSET_VARIABLE} is not set in the environment"),
])
def test_scenario_request_keys_are_checked_with_the_key_named(tmp_path, entry, message):
    scenario = tmp_path / "bad.toml"
    scenario.write_text(f'app = "orders:app"\n[[endpoint]]\nmethod = "POST"\npath = "/o"\n{entry}\n')
    with pytest.raises(ScenarioError, match=None) as raised:
        load_scenario(scenario)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_a_raw_body_keeps_its_content_type_and_a_query_is_url_encoded(tmp_path):
    scenario = tmp_path / "raw.toml"
    scenario.write_text('app = "orders:app"\nheaders = { Authorization = "Bearer t" }\n[[endpoint]]\n'
                        'method = "put"\npath = "/upload?v=1"\nbody = "a,b\\n1,2"\ncontent_type = "text/csv"\n'
                        'query = { name = "a b", tag = ["x", "y"] }\nheaders = { Authorization = "Bearer own" }\n')
    endpoint = load_scenario(scenario).targets[0].endpoint
    assert (endpoint.method, endpoint.path, endpoint.body) == ("PUT", "/upload?v=1&name=a+b&tag=x&tag=y", "a,b\n1,2")
    assert dict(endpoint.headers) == {"Authorization": "Bearer own", "Content-Type": "text/csv"}


def test_a_server_the_user_runs_is_measured_at_its_url_with_the_lag_its_wrapper_writes(tmp_path, app_dir):
    """The test starts uvicorn itself (as `docker compose` would), the app wrapped in one line with
    `asyncguard.bench.lag.measured`; `--url` measures it, `--lag-file` reads its loop lag."""
    (app_dir / "lagged.py").write_text("from asyncguard.bench.lag import measured\nfrom orders import app as inner\n\n"
                                       "app = measured(inner)\n")
    lag_file = tmp_path / "lag.txt"
    with Server("lagged:app", app_dir=app_dir, env={**TOKEN, "ASYNCGUARD_LAG_FILE": str(lag_file)}) as server:
        common = ["--endpoint", "POST /shops/1/orders?express=true", "--json", '{"item": "cup", "quantity": 3}',
                  "-H", "Authorization: Bearer s3cret", *FAST]
        measured = bench("--url", server.url, "--lag-file", str(lag_file), *common, "--out", str(tmp_path / "lag"))
        unmeasured = bench("--url", server.url, *common, "--out", str(tmp_path / "nolag"))
    assert measured.returncode == 0 and unmeasured.returncode == 0, measured.stderr + unmeasured.stderr
    with_lag = BenchResults.load(tmp_path / "lag" / "results.json").runs[0]
    without = BenchResults.load(tmp_path / "nolag" / "results.json").runs[0]
    assert with_lag.failures == 0 and with_lag.requests > 10 and with_lag.lag.measured and with_lag.lag.samples > 20
    assert without.failures == 0 and not without.lag.measured and not without.lag.blocked
    assert with_lag.profile is None and "loop lag not measured" in unmeasured.stderr + unmeasured.stdout
    assert orphans(str(app_dir)) == []


@pytest.mark.parametrize("args,message", [
    (["--url", "http://example.com:8000"], "only a server on this machine (127.0.0.1) is measured, not example.com"),
    (["--url", "https://127.0.0.1:8443"], "--url takes http://127.0.0.1:PORT"),
    (["--url", "http://127.0.0.1:8000/api"], "give the server's address only"),
    (["--url", "http://127.0.0.1:8000", "orders:app"], "give one of"),
    (["orders:app", "--lag-file", "lag.txt"], "--lag-file goes with --url"),
])
def test_a_url_is_this_machine_only_and_checked_before_anything_runs(args, message):
    process = bench(*args, timeout=30)
    assert process.returncode == 2 and message in process.stderr and len(process.stderr.splitlines()) == 1


def test_under_a_rate_latency_counts_from_the_intended_send_time(tmp_path, app_dir):
    """The open model on tests/bench_apps/stalling.py (200 ms stalls every 2 s): requests that fell due during a stall
    waited for it, and `latency` says so; `latency_uncorrected` (from the actual send, as a closed loop measures)
    hides it behind the few users that were stuck. Every intended request is sent."""
    out = tmp_path / "rate"
    process = bench("stalling:app", "--app-dir", str(app_dir), "--health", "/", "--rate", "100", "--users", "4",
                    "--warmup", "0.5", "--duration", "4", "--no-profile", "--out", str(out))
    assert process.returncode == 0, process.stderr
    run = BenchResults.load(out / "results.json").runs[0]
    assert run.latency.p99 > 120 and run.latency_uncorrected.p95 < 0.5 * run.latency.p95
    assert abs(run.requests - 400) <= 20 and run.failures == 0


def test_discover_measures_what_the_schema_can_call_and_says_what_it_skipped(tmp_path, app_dir):
    out = tmp_path / "discovered"
    process = bench("orders:app", "--app-dir", str(app_dir), "--discover", "-H", "Authorization: Bearer s3cret",
                    "--health", "/health", *FAST, "--out", str(out), env=TOKEN)
    assert process.returncode == 0, process.stderr
    runs = BenchResults.load(out / "results.json").runs
    assert [run.name for run in runs] == ["GET /health", "POST /shops/7/orders", "GET /shops/7/orders/1"]
    assert all(run.failures == 0 and run.requests > 10 for run in runs)
    assert "skipped DELETE /shops/{shop_id}/orders/{order_id}: path parameter `shop_id` has no example" in \
        process.stderr


def test_discover_prints_a_scenario_to_edit(tmp_path, app_dir):
    process = bench("orders:app", "--app-dir", str(app_dir), "--discover", "--print-scenario", env=TOKEN)
    assert process.returncode == 0, process.stderr
    scenario = tmp_path / "discovered.toml"
    scenario.write_text(process.stdout)
    targets = load_scenario(scenario).targets
    assert [(t.endpoint.method, t.endpoint.path) for t in targets] == [
        ("GET", "/health"), ("POST", "/shops/7/orders"), ("GET", "/shops/7/orders/1")]
    assert json.loads(targets[1].endpoint.body) == {"item": "pen", "quantity": 1}
    assert process.stdout.startswith("# skipped POST /login: request body has no JSON example\n# skipped DELETE")


@pytest.mark.parametrize("args,message", [
    (["orders:app", "--print-scenario"], "--print-scenario and --openapi go with --discover"),
    (["orders:app", "--discover", "--endpoint", "GET /"], "give no --endpoint"),
])
def test_discover_flags_are_checked(args, message):
    process = bench(*args, timeout=30)
    assert process.returncode == 2 and message in process.stderr and len(process.stderr.splitlines()) == 1


def test_a_locustfile_with_a_two_step_task_is_the_load_with_loop_lag_and_report(tmp_path, app_dir):
    out = tmp_path / "flow"
    process = bench("orders:app", "--app-dir", str(app_dir), "-f", str(app_dir / "shopper.py"), "--health",
                    "/health", "--users", "2", "--warmup", "0.2", "--duration", "1.5", "--out", str(out), env=TOKEN)
    assert process.returncode == 0, process.stderr
    runs = BenchResults.load(out / "results.json").runs
    assert [run.name for run in runs] == ["POST /shops/7/orders", "GET /shops/7/orders/[id]"]  # logged in first
    create, read = runs
    assert create.requests > 10 and abs(create.requests - read.requests) <= 2 and create.failures == read.failures == 0
    assert create.lag.measured and create.lag.samples > 20 and create.profile is not None
    assert create.profile.blocking_frames and all(frame.startswith("apps/orders.py:")  # no manifest: its own code
                                                  for frame in create.profile.blocking_frames)
    assert "POST /shops/7/orders" in (out / "index.html").read_text()


@pytest.mark.parametrize("args,message", [
    (["orders:app", "-f", "shopper.py", "--rate", "10"], "its users pace themselves"),
    (["orders:app", "-f", "shopper.py", "--endpoint", "GET /"], "no --endpoint"),
    (["orders:app", "-f", "nowhere.py"], "-f nowhere.py: no such file"),
])
def test_locustfile_flags_are_checked(args, message, app_dir):
    process = bench(*[str(app_dir / arg) if arg == "shopper.py" else arg for arg in args], timeout=30)
    assert process.returncode == 2 and message in process.stderr and len(process.stderr.splitlines()) == 1
