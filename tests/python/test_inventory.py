"""The car-inventory service (apps/inventory) end to end on nimbus, its template unchanged: the
OpenAPI-defined REST API with its request validator, the AWS SDK for Rust against nimbus's
DynamoDB (conditional writes, optimistic locking, the GSI, pagination), the table's stream to
the bus (CarCreated / CarUpdated / CarDeleted), and the per-status count kept from those events."""

import json

import pytest
import requests

from conftest import ROOT, Nimbus, poll

APP = ROOT / "apps" / "inventory"


@pytest.fixture
def inventory(tmp_path):
    n = Nimbus(APP, ["--api-port", "0", "--state-dir", str(tmp_path / "state")], timeout=600)
    yield n, n.api_url("InventoryApi")
    n.stop()


def stats(base):
    return requests.get(f"{base}/stats", timeout=10).json()["counts"]


def test_cars_are_created_read_replaced_listed_and_deleted(inventory):
    n, base = inventory
    r = requests.post(f"{base}/cars", json={"make": "Tesla", "model": "Model 3", "year": 2022,
                                             "price": 35000, "vin": "5yj3e1ea7kf317000"}, timeout=10)
    assert r.status_code == 201, r.text
    car = r.json()
    assert car["version"] == 1 and car["status"] == "available" and car["vin"] == "5YJ3E1EA7KF317000"
    assert r.headers["location"] == f"/cars/{car['id']}"
    assert requests.get(f"{base}/cars/{car['id']}", timeout=10).json() == car

    # Optimistic locking: the version read is the version written over; a stale one is a 409.
    put = {"make": "Tesla", "model": "Model 3", "year": 2022, "status": "sold", "version": 1}
    r = requests.put(f"{base}/cars/{car['id']}", json=put, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2 and "price" not in r.json()  # a full replacement
    r = requests.put(f"{base}/cars/{car['id']}", json=put, timeout=10)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "version_conflict" and r.json()["error"]["current_version"] == 2

    for i in range(5):
        requests.post(f"{base}/cars", json={"make": "Ford", "model": f"T{i}", "year": 1925}, timeout=10)
    pages, token = [], None
    while True:
        params = {"status": "available", "limit": 2}
        if token:
            params["next"] = token
        page = requests.get(f"{base}/cars", params=params, timeout=10).json()
        pages.append([c["model"] for c in page["cars"]])
        token = page.get("next")
        if not token:
            break
    assert sorted(m for p in pages for m in p) == [f"T{i}" for i in range(5)]
    assert all(len(p) <= 2 for p in pages)
    assert [c["id"] for c in requests.get(f"{base}/cars?status=sold", timeout=10).json()["cars"]] == [car["id"]]

    assert requests.delete(f"{base}/cars/{car['id']}", timeout=10).status_code == 204
    assert requests.get(f"{base}/cars/{car['id']}", timeout=10).status_code == 404
    assert requests.delete(f"{base}/cars/{car['id']}", timeout=10).status_code == 404

    # The stream is the outbox: every change became an event, and the counts follow them.
    want = {"available": 5, "reserved": 0, "sold": 0}
    got = poll(lambda: stats(base), lambda c: c == want, timeout=30)
    assert got == want
    n.wait_for('"event":"counted"')


BAD = [
    ({"model": "T", "year": 1925}, 400, "Invalid request body"),  # API Gateway's validator
    ({"make": "F", "model": "T", "year": 1800}, 400, "year must be an integer from 1886 to 2100, got 1800"),
    ({"make": "F", "model": "T", "year": 1925, "status": "gone"}, 400,
     'status must be one of available, reserved, sold, got "gone"'),
    ({"make": "F", "model": "T", "year": 1925, "modle": "x"}, 400,
     'unknown field "modle"; a car has make, model, year, color, price, mileage, vin and status'),
]


@pytest.mark.parametrize("body,status,message", BAD, ids=[b[2][:40] for b in BAD])
def test_bad_cars_get_clear_400s(inventory, body, status, message):
    _, base = inventory
    r = requests.post(f"{base}/cars", json=body, timeout=10)
    assert r.status_code == status
    doc = r.json()
    assert (doc.get("message") or doc["error"]["message"]) == message


def test_bad_queries_and_routes(inventory):
    _, base = inventory
    r = requests.get(f"{base}/cars", params={"limit": 0}, timeout=10)
    assert r.status_code == 400 and "limit must be an integer from 1 to 100" in r.json()["error"]["message"]
    r = requests.get(f"{base}/cars", params={"next": "forged"}, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_query"
    r = requests.put(f"{base}/cars/nope", json={"make": "F", "model": "T", "year": 1925, "version": 1}, timeout=10)
    assert r.status_code == 404
