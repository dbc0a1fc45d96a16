"""API Gateway integrations (and Step Functions' HTTP tasks) to https:// backends: nimbus speaks TLS to them and
trusts what the machine trusts (here a test CA given with SSL_CERT_FILE, which the system
store reader honours), and refuses a backend whose certificate does not match its name."""

import http.server
import json
import ssl
import subprocess
import threading
import time

import requests


def make_certificates(d):
    """A CA, and a server certificate for `localhost` (only) that it signed."""
    def run(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=nimbus test CA",
        "-keyout", "ca.key", "-out", "ca.pem")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
        "-keyout", "server.key", "-out", "server.csr")
    (d / "ext.cnf").write_text("subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "1", "-extfile", "ext.cnf", "-out", "server.pem")
    return d / "ca.pem", d / "server.pem", d / "server.key"


def https_backend(cert, key):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"path": self.path, "who": self.headers.get("x-who")}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Proxy:
    Type: AWS::Serverless::Api
    Properties:
      StageName: Prod
      DefinitionBody:
        openapi: "3.0.1"
        info: {title: proxy, version: "1"}
        paths:
          /items/{id}:
            get:
              x-amazon-apigateway-integration:
                type: http_proxy
                httpMethod: GET
                uri: https://localhost:PORT/backend/{id}
          /by-ip:
            get:
              x-amazon-apigateway-integration:
                type: http_proxy
                httpMethod: GET
                uri: https://127.0.0.1:PORT/backend/ip
"""


def test_https_backends_are_reached_over_tls_and_a_name_mismatch_is_refused(
        tmp_path, start_nimbus, monkeypatch):
    ca, cert, key = make_certificates(tmp_path)
    server = https_backend(cert, key)
    try:
        monkeypatch.setenv("SSL_CERT_FILE", str(ca))
        nimbus = start_nimbus(TEMPLATE.replace("PORT", str(server.server_address[1])))
        base = nimbus.api_url("Proxy")
        r = requests.get(f"{base}/items/7?x=1", headers={"x-who": "ada"}, timeout=10)
        assert r.status_code == 200, r.text
        assert r.json() == {"path": "/backend/7?x=1", "who": "ada"}

        # The certificate names localhost only: API Gateway's 500, and the log says why.
        r = requests.get(f"{base}/by-ip", timeout=10)
        assert r.status_code == 500, r.text
        assert r.json() == {"message": "Internal server error"}
        # The access log (the API's log file) says why.
        log = tmp_path / ".nimbus" / "logs" / "Proxy.log"
        deadline = time.time() + 5
        while not ("/by-ip" in (log.read_text() if log.exists() else "")) and time.time() < deadline:
            time.sleep(0.05)
        entry = [json.loads(l.split("\t", 1)[1]) for l in log.read_text().splitlines() if "/by-ip" in l][-1]
        assert 'certificate not valid for name "127.0.0.1"' in entry["error"], entry

        # A Step Functions HTTP task reaches the same https backend through the same client.
        sfn = nimbus.client("stepfunctions")
        port = server.server_address[1]
        definition = {"StartAt": "Call", "States": {"Call": {
            "Type": "Task", "Resource": "arn:aws:states:::http:invoke",
            "Parameters": {"ApiEndpoint": f"https://localhost:{port}/sfn", "Method": "GET",
                           "Headers": {"x-who": "sfn"}},
            "ResultSelector": {"status.$": "$.StatusCode", "body.$": "$.ResponseBody"}, "End": True}}}
        arn = sfn.create_state_machine(name="https", roleArn="arn:aws:iam::123456789012:role/r",
                                       definition=json.dumps(definition))["stateMachineArn"]
        run = sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"]
        deadline = time.time() + 10
        while (out := sfn.describe_execution(executionArn=run))["status"] == "RUNNING" and time.time() < deadline:
            time.sleep(0.05)
        assert out["status"] == "SUCCEEDED", out
        assert json.loads(out["output"]) == {"status": 200, "body": {"path": "/sfn", "who": "sfn"}}
    finally:
        server.shutdown()
