#!/usr/bin/env python3
"""Sends COUNT orders to the Notify API's URL, evenly over SECONDS, and prints what was
accepted as JSON ({"accepted": [correlation ids], "statuses": {status: count}}) for the
Chaos Toolkit journal. Standard library only.

Usage: send_orders.py NOTIFY_URL COUNT SECONDS
"""

import json
import sys
import time
import urllib.error
import urllib.request


def main():
    url, count, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    accepted, statuses = [], {}
    start = time.monotonic()
    for i in range(count):
        time.sleep(max(0.0, start + i * seconds / count - time.monotonic()))
        body = json.dumps({"order_id": f"chaos-{i}", "email": "c@example.com"}).encode()
        req = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, answer = r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            status, answer = e.code, {}
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        if status == 200:
            accepted.append(answer["correlation_id"])
    print(json.dumps({"accepted": accepted, "statuses": statuses}))


if __name__ == "__main__":
    main()
