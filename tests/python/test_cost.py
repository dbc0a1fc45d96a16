"""`nimbus cost`: a fixed workload priced with the repository's price file equals the figure
computed here by hand from the same file and nimbus's own counters; the free tier and a bad
price file behave as documented."""

import json
import re
import subprocess

import requests

from conftest import NIMBUS, ROOT

PRICES = json.loads((ROOT / "crates" / "nimbus" / "prices" / "us-east-1.json").read_text())

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Work:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      CodeUri: src/
      MemorySize: 256
"""

APP = "def handler(event, context):\n    return event\n"


def cost(n, *args):
    out = subprocess.run([str(NIMBUS), "cost", "--endpoint-url", n.endpoint, *args],
                         capture_output=True, text=True, timeout=60)
    return out.returncode, out.stdout, out.stderr


def test_cost_of_a_fixed_workload_matches_the_price_file(start_nimbus, tmp_path):
    n = start_nimbus(TEMPLATE, {"src/app.py": APP})
    lam = n.client("lambda")
    for i in range(50):
        lam.invoke(FunctionName="Work", Payload=json.dumps({"i": i}).encode())["Payload"].read()
    metrics = requests.get(f"{n.endpoint}/metrics", timeout=10).text
    billed_ms = float(re.search(r'nimbus_lambda_billed_milliseconds_total\{function="Work"\} (\S+)', metrics).group(1))
    lp = PRICES["lambda"]
    want = 50 * lp["requests_per_million"] / 1e6 + billed_ms / 1000 * 256 / 1024 * lp["gb_second_x86_64"]
    code, out, err = cost(n, "--no-free-tier", "--json")
    assert code == 0, err
    got = json.loads(out)
    assert abs(got["total"] - want) < 1e-12, (got, want)
    assert [(l["item"], l["quantity"]) for l in got["lines"]][0] == ("requests", 50)
    # The text form names the function's lines and the total.
    code, out, _ = cost(n, "--no-free-tier")
    assert code == 0 and "Work requests" in out and re.search(r"^Total\s+\$", out, re.M), out
    # The monthly free tier covers this much.
    code, out, _ = cost(n, "--json")
    assert json.loads(out)["total"] == 0
    # A price file without a figure is refused, naming it.
    bad = {**PRICES, "lambda": {k: v for k, v in lp.items() if k != "gb_second_x86_64"}}
    (tmp_path / "prices.json").write_text(json.dumps(bad))
    code, _, err = cost(n, "--prices", str(tmp_path / "prices.json"))
    assert code != 0 and "lambda.gb_second_x86_64" in err, err
