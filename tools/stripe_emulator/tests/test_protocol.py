"""The request pipeline: auth, parsing, errors, idempotency, rate limits, locks, faults."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator

import httpx
import pytest
import stripe
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stripe_emulator.forms import parse_form
from stripe_emulator.testing import TEST_KEY, EmulatorHandle

AUTH = {"Authorization": f"Bearer {TEST_KEY}"}


@pytest.fixture
def http(emu: EmulatorHandle) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.url, timeout=30) as c:
        yield c


# -- form encoding --------------------------------------------------------------------------


def test_bracket_syntax_nests_dicts_and_lists() -> None:
    parsed = parse_form(
        "metadata[k]=v&items[0][price]=p1&items[1][price]=p2&expand[]=a&expand[]=b&x=1"
    )
    assert parsed == {
        "metadata": {"k": "v"},
        "items": [{"price": "p1"}, {"price": "p2"}],
        "expand": ["a", "b"],
        "x": "1",
    }


def test_expand_and_metadata_travel_through_the_sdk(client: stripe.StripeClient) -> None:
    cus = client.v1.customers.create(params={"metadata": {"order": "o-1", "blank": "x"}})
    assert cus.metadata.to_dict() == {"order": "o-1", "blank": "x"}


# -- errors in Stripe's shape ---------------------------------------------------------------


def test_missing_key_is_401(http: httpx.Client) -> None:
    r = http.get("/v1/customers")
    assert r.status_code == 401
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert r.headers["Request-Id"].startswith("req_")


def test_unknown_key_is_401_and_redacted(emu: EmulatorHandle) -> None:
    bad = emu.stripe_client("sk_live_abcdefghijklmnop1234")
    with pytest.raises(stripe.AuthenticationError) as err:
        bad.v1.customers.list()
    assert "abcdefghijklmnop" not in str(err.value)


def test_unknown_path_is_404_not_500(http: httpx.Client) -> None:
    r = http.post("/v1/no_such_things", headers=AUTH)
    assert r.status_code == 404
    assert "Unrecognized request URL" in r.json()["error"]["message"]


def test_missing_object_is_resource_missing(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.retrieve("cus_doesnotexist")
    assert err.value.http_status == 404
    assert err.value.code == "resource_missing" and err.value.param == "id"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ("metadata=notahash&metadata[a]=b", "metadata"),
        ("metadata[a][b]=c", "metadata"),
        ("balance=abc", "balance"),
        ("email[x]=y", "email"),
        ("preferred_locales=en&preferred_locales[0]=fr", "preferred_locales"),
    ],
)
def test_wrong_types_are_400_naming_param(http: httpx.Client, body: str, param: str) -> None:
    r = http.post(
        "/v1/customers",
        content=body,
        headers={**AUTH, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"].get("param", "").startswith(param)


def test_list_limit_is_validated(http: httpx.Client) -> None:
    r = http.get("/v1/customers?limit=1000", headers=AUTH)
    assert r.status_code == 400 and r.json()["error"]["param"] == "limit"


def test_oversized_body_is_413(http: httpx.Client) -> None:
    r = http.post("/v1/customers", content=b"description=" + b"x" * (2 << 20), headers=AUTH)
    assert r.status_code == 413
    assert r.json()["error"]["type"] == "invalid_request_error"


def test_non_utf8_body_is_400(http: httpx.Client) -> None:
    r = http.post("/v1/customers", content=b"description=\xff\xfe", headers=AUTH)
    assert r.status_code == 400


def test_cursor_naming_unknown_object_is_404(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.list(params={"starting_after": "cus_nope"})
    assert err.value.http_status == 404 and err.value.param == "starting_after"


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    body=st.one_of(
        st.binary(max_size=300),
        st.lists(
            st.tuples(
                st.text(alphabet="abcdemtx[]0123_", min_size=1, max_size=20),
                st.text(max_size=20),
            ),
            max_size=8,
        ).map(lambda kv: "&".join(f"{k}={v}" for k, v in kv).encode()),
    ),
    path=st.sampled_from(["/v1/customers", "/v1/customers/cus_x", "/v1/webhook_endpoints"]),
)
def test_garbage_never_causes_a_500(http: httpx.Client, body: bytes, path: str) -> None:
    r = http.post(path, content=body, headers=AUTH)
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        assert set(r.json()["error"]) >= {"type", "message"}


# -- auth scopes ----------------------------------------------------------------------------


def test_restricted_key_permissions(emu: EmulatorHandle) -> None:
    emu.control.restricted_key("rk_test_readonly", {"customers": "read"})
    ro = emu.stripe_client("rk_test_readonly")
    assert ro.v1.customers.list().data == []
    with pytest.raises(stripe.PermissionError) as err:
        ro.v1.customers.create(params={"email": "no@example.com"})
    assert err.value.http_status == 403
    assert "rak_customer_write" in str(err.value)
    unknown = emu.stripe_client("rk_test_unregistered")
    with pytest.raises(stripe.AuthenticationError):
        unknown.v1.customers.list()


def test_unknown_connected_account_is_refused(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.PermissionError):
        client.v1.customers.list(options={"stripe_account": "acct_unknown"})


# -- idempotency ----------------------------------------------------------------------------


def test_replay_mismatch_and_key_limit(client: stripe.StripeClient, http: httpx.Client) -> None:
    first = client.v1.customers.create(
        params={"email": "a@example.com"}, options={"idempotency_key": "idem-1"}
    )
    again = http.post(
        "/v1/customers",
        data={"email": "a@example.com"},
        headers={**AUTH, "Idempotency-Key": "idem-1"},
    )
    assert again.json()["id"] == first.id
    assert again.headers["Idempotent-Replayed"] == "true"
    with pytest.raises(stripe.IdempotencyError):
        client.v1.customers.create(
            params={"email": "b@example.com"}, options={"idempotency_key": "idem-1"}
        )
    r = http.post("/v1/customers", headers={**AUTH, "Idempotency-Key": "k" * 256})
    assert r.status_code == 400
    ok = http.post("/v1/customers", headers={**AUTH, "Idempotency-Key": "k" * 255})
    assert ok.status_code == 200
    assert len(client.v1.customers.list().data) == 2


def test_validation_failures_are_not_stored(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.create(params={"emali": "x"}, options={"idempotency_key": "idem-v"})
    cus = client.v1.customers.create(
        params={"email": "x@example.com"}, options={"idempotency_key": "idem-v"}
    )
    assert cus.email == "x@example.com"


def test_state_errors_are_stored_and_replayed(http: httpx.Client) -> None:
    headers = {**AUTH, "Idempotency-Key": "idem-404"}
    first = http.post("/v1/customers/cus_missing", data={"name": "n"}, headers=headers)
    second = http.post("/v1/customers/cus_missing", data={"name": "n"}, headers=headers)
    assert first.status_code == second.status_code == 404
    assert second.headers.get("Idempotent-Replayed") == "true"


def test_keys_expire_after_24h_of_emulator_time(
    emu: EmulatorHandle, client: stripe.StripeClient
) -> None:
    opts = {"idempotency_key": "idem-old"}
    first = client.v1.customers.create(params={"email": "e@example.com"}, options=opts)
    emu.control.advance(seconds=23 * 3600)
    assert (
        client.v1.customers.create(params={"email": "e@example.com"}, options=opts).id == first.id
    )
    emu.control.advance(seconds=3600)
    assert (
        client.v1.customers.create(params={"email": "e@example.com"}, options=opts).id != first.id
    )


def test_concurrent_duplicates_execute_once(emu: EmulatorHandle) -> None:
    emu.control.faults(latency_ms=300, methods=["POST"])
    headers = {**AUTH, "Idempotency-Key": "idem-race"}

    def send(_: int) -> httpx.Response:
        with httpx.Client(base_url=emu.url, timeout=30) as c:
            return c.post("/v1/customers", data={"email": "r@example.com"}, headers=headers)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, range(8)))
    codes = sorted(r.status_code for r in answers)
    assert codes.count(200) >= 1 and set(codes) <= {200, 409}
    in_use = [r for r in answers if r.status_code == 409]
    assert in_use, "the racing duplicates must see the first still running"
    assert all(r.json()["error"]["code"] == "idempotency_key_in_use" for r in in_use)
    executed = [e for e in emu.control.requests(idempotency_key="idem-race") if e["status"] == 200]
    assert len([e for e in executed if not e["replayed"]]) == 1
    emu.control.clear_faults()
    listed = emu.stripe_client().v1.customers.list().data
    assert len(listed) == 1


# -- rate limits and locks ------------------------------------------------------------------


def test_burst_beyond_the_rate_is_429_and_not_stored(emu: EmulatorHandle) -> None:
    emu.control.configure(global_rate=5, endpoint_rate=None)
    with httpx.Client(base_url=emu.url, timeout=30) as c:
        answers = [
            c.post("/v1/customers", headers={**AUTH, "Idempotency-Key": f"burst-{i}"})
            for i in range(30)
        ]
    limited = [r for r in answers if r.status_code == 429]
    assert limited, "30 requests at once must exceed 5 requests/s"
    err = limited[0].json()["error"]
    assert err["code"] == "rate_limit"
    assert limited[0].headers["Stripe-Rate-Limited-Reason"] == "global-rate"
    emu.control.configure(global_rate=None)
    key = limited[0].request.headers["Idempotency-Key"]
    with httpx.Client(base_url=emu.url, timeout=30) as c:
        retry = c.post("/v1/customers", headers={**AUTH, "Idempotency-Key": key})
    assert retry.status_code == 200 and "Idempotent-Replayed" not in retry.headers


def test_endpoint_rate_is_counted_per_endpoint(emu: EmulatorHandle) -> None:
    emu.control.configure(global_rate=None, endpoint_rate=3)
    with httpx.Client(base_url=emu.url, timeout=30) as c:
        creates = [c.post("/v1/customers", headers=AUTH).status_code for _ in range(10)]
        lists = [c.get("/v1/customers", headers=AUTH) for _ in range(2)]
    assert 429 in creates
    assert all(r.status_code == 200 for r in lists)


def test_concurrent_writes_to_one_object_get_lock_timeout(emu: EmulatorHandle) -> None:
    client = emu.stripe_client()
    cus = client.v1.customers.create()
    emu.control.configure(lock_wait_s=0.05)
    emu.control.faults(latency_ms=400, methods=["POST"], path_prefix=f"/v1/customers/{cus.id}")

    def update(i: int) -> httpx.Response:
        with httpx.Client(base_url=emu.url, timeout=30) as c:
            return c.post(f"/v1/customers/{cus.id}", data={"name": f"n{i}"}, headers=AUTH)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(update, range(4)))
    emu.control.configure(lock_wait_s=0.5)
    locked = [r for r in answers if r.status_code == 429]
    assert locked and any(r.status_code == 200 for r in answers)
    assert locked[0].json()["error"]["code"] == "lock_timeout"
    assert locked[0].headers["Stripe-Should-Retry"] == "true"
    assert "Stripe-Rate-Limited-Reason" not in locked[0].headers


# -- injected faults ------------------------------------------------------------------------


def test_injected_500_executes_nothing(emu: EmulatorHandle, client: stripe.StripeClient) -> None:
    emu.control.faults(error_rate=1.0, methods=["POST"])
    with pytest.raises(stripe.APIError) as err:
        client.v1.customers.create(options={"idempotency_key": "idem-500"})
    assert err.value.http_status == 500
    emu.control.clear_faults()
    client.v1.customers.create(options={"idempotency_key": "idem-500"})
    assert len(client.v1.customers.list().data) == 1


def test_reset_before_takes_no_effect(emu: EmulatorHandle, client: stripe.StripeClient) -> None:
    emu.control.faults(reset_before_rate=1.0, methods=["POST"])
    with pytest.raises(stripe.APIConnectionError):
        client.v1.customers.create(options={"idempotency_key": "idem-rb"})
    emu.control.clear_faults()
    assert client.v1.customers.list().data == []


def test_reset_after_takes_effect_and_retry_replays(
    emu: EmulatorHandle, client: stripe.StripeClient
) -> None:
    emu.control.faults(reset_after_rate=1.0, methods=["POST"])
    with pytest.raises(stripe.APIConnectionError):
        client.v1.customers.create(
            params={"email": "amb@example.com"}, options={"idempotency_key": "idem-ra"}
        )
    emu.control.clear_faults()
    created = client.v1.customers.list().data
    assert len(created) == 1, "the request took effect before the connection dropped"
    retried = client.v1.customers.create(
        params={"email": "amb@example.com"}, options={"idempotency_key": "idem-ra"}
    )
    assert retried.id == created[0].id


def test_429_storm(emu: EmulatorHandle, client: stripe.StripeClient) -> None:
    emu.control.faults(rate_limit_rate=1.0)
    with pytest.raises(stripe.RateLimitError):
        client.v1.customers.list()
    emu.control.clear_faults()
    client.v1.customers.list()


def test_sdk_retries_ride_out_injected_errors(
    emu: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The SDK's own backoff (0.5 s floor) would make this slow, not more convincing.
    monkeypatch.setattr(stripe._http_client.HTTPClient, "INITIAL_DELAY", 0.01)
    monkeypatch.setattr(stripe._http_client.HTTPClient, "MAX_DELAY", 0.05)
    emu.control.faults(error_rate=0.3, reset_after_rate=0.3, methods=["POST"])
    client = emu.stripe_client(max_network_retries=12)
    ids = {
        client.v1.customers.create(options={"idempotency_key": f"flaky-{i}"}).id for i in range(20)
    }
    emu.control.clear_faults()
    log = emu.control.requests(method="POST", path="/v1/customers")
    assert any(e.get("reset") == "after" for e in log) and any(e["status"] == 500 for e in log)
    assert all(e["executed_status"] == 200 for e in log if e.get("reset") == "after")
    assert len(ids) == 20
    assert len(client.v1.customers.list(params={"limit": 100}).data) == 20
