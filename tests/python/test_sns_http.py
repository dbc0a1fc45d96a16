"""SNS's HTTP/HTTPS subscriptions against nimbus, with boto3 and a real HTTP endpoint: the
subscription confirmation and its SubscribeURL, notifications signed as SNS signs them (checked
here with python-rsa against the certificate at SigningCertURL, SHA1withRSA and SHA256withRSA),
raw delivery, retries under the delivery policy, the dead-letter queue, and deliveries accepted
before `kill -9` made after it."""

import base64
import json
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import rsa
from botocore.exceptions import ClientError
from pyasn1.codec.der import decoder, encoder

from conftest import wait_until

TOPIC = "arn:aws:sns:us-east-1:123456789012:hooks"


class Endpoint:
    """An HTTP subscriber on loopback: records every POST; answers confirmations 200 and
    notifications with the statuses queued in `answers` (then 200)."""

    def __init__(self):
        self.posts = []
        self.answers = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
                with outer.lock:
                    outer.posts.append({"path": self.path,
                                        "headers": {k.lower(): v for k, v in self.headers.items()},
                                        "body": body})
                    kind = self.headers.get("x-amz-sns-message-type")
                    status = outer.answers.pop(0) if kind == "Notification" and outer.answers else 200
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def of_type(self, kind):
        with self.lock:
            return [p for p in self.posts if p["headers"].get("x-amz-sns-message-type") == kind]

    def notifications(self):
        return self.of_type("Notification")

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint():
    e = Endpoint()
    yield e
    e.close()


def public_key(cert_url):
    """The RSA key of the certificate at `cert_url`: its SubjectPublicKeyInfo, read from the DER
    without a schema (tbsCertificate's seventh field)."""
    pem = urllib.request.urlopen(cert_url, timeout=10).read().decode()
    der = base64.b64decode("".join(l for l in pem.splitlines() if not l.startswith("-----")))
    cert, _ = decoder.decode(der)
    spki = encoder.encode(cert[0][6])
    return rsa.PublicKey.load_pkcs1_openssl_der(spki)


def string_to_sign(doc):
    """What SNS signs, as its documentation lists the fields (written here independently of
    nimbus's own code)."""
    if doc["Type"] == "Notification":
        fields = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    else:
        fields = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    return "".join(f"{f}\n{doc[f]}\n" for f in fields if f in doc).encode()


def verify(doc):
    """Verifies a message's signature; returns the hash the signature used."""
    key = public_key(doc["SigningCertURL"])
    return rsa.verify(string_to_sign(doc), base64.b64decode(doc["Signature"]), key)


TEMPLATE = """
Resources:
  Hooks:
    Type: AWS::SNS::Topic
    Properties: {TopicName: hooks}
  Dead:
    Type: AWS::SQS::Queue
    Properties: {QueueName: hooks-dlq}
"""


def code_and_message(excinfo):
    e = excinfo.value.response["Error"]
    return e["Code"], e["Message"]


def test_an_http_subscriber_confirms_and_receives_signed_notifications(start_nimbus, endpoint):
    n = start_nimbus(TEMPLATE)
    sns = n.client("sns")
    answer = sns.subscribe(TopicArn=TOPIC, Protocol="http", Endpoint=endpoint.url)
    assert answer["SubscriptionArn"] == "pending confirmation"

    confirmation = wait_until("the confirmation", lambda: endpoint.of_type("SubscriptionConfirmation"))[0]
    h = confirmation["headers"]
    assert h["content-type"] == "text/plain; charset=UTF-8"
    assert h["user-agent"] == "Amazon Simple Notification Service Agent"
    assert h["x-amz-sns-topic-arn"] == TOPIC
    doc = json.loads(confirmation["body"])
    assert doc["Type"] == "SubscriptionConfirmation"
    assert doc["MessageId"] == h["x-amz-sns-message-id"]
    assert doc["Message"].startswith(f"You have chosen to subscribe to the topic {TOPIC}.")
    assert doc["SignatureVersion"] == "1"
    assert verify(doc) == "SHA-1"

    listed = sns.list_subscriptions_by_topic(TopicArn=TOPIC)["Subscriptions"]
    assert [s["SubscriptionArn"] for s in listed] == ["PendingConfirmation"]
    assert sns.get_topic_attributes(TopicArn=TOPIC)["Attributes"]["SubscriptionsPending"] == "1"
    sns.publish(TopicArn=TOPIC, Message="before confirmation")

    with pytest.raises(ClientError) as bad:
        sns.confirm_subscription(TopicArn=TOPIC, Token="not-the-token")
    assert code_and_message(bad) == ("InvalidParameter", "Invalid parameter: Token")

    # Visiting the SubscribeURL (no credentials) confirms, as on SNS.
    xml = urllib.request.urlopen(doc["SubscribeURL"], timeout=10).read().decode()
    assert "<ConfirmSubscriptionResponse" in xml and "<SubscriptionArn>" in xml
    arn = xml.split("<SubscriptionArn>")[1].split("<")[0]
    assert sns.list_subscriptions_by_topic(TopicArn=TOPIC)["Subscriptions"][0]["SubscriptionArn"] == arn
    attrs = sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
    assert attrs["PendingConfirmation"] == "false"
    # Confirming again answers the same subscription.
    assert sns.confirm_subscription(TopicArn=TOPIC, Token=doc["Token"])["SubscriptionArn"] == arn

    sent = sns.publish(TopicArn=TOPIC, Message="hello", Subject="greeting",
                       MessageAttributes={"color": {"DataType": "String", "StringValue": "red"}})
    post = wait_until("the notification", endpoint.notifications)[0]
    h = post["headers"]
    assert h["x-amz-sns-message-id"] == sent["MessageId"]
    assert h["x-amz-sns-subscription-arn"] == arn
    note = json.loads(post["body"])
    assert (note["Type"], note["Message"], note["Subject"]) == ("Notification", "hello", "greeting")
    assert note["MessageAttributes"] == {"color": {"Type": "String", "Value": "red"}}
    assert note["UnsubscribeURL"].endswith(f"Action=Unsubscribe&SubscriptionArn={arn}")
    assert verify(note) == "SHA-1"
    # The message published while the subscription was pending was not delivered.
    assert [json.loads(p["body"])["Message"] for p in endpoint.notifications()] == ["hello"]

    # SignatureVersion 2: SHA256withRSA.
    sns.set_topic_attributes(TopicArn=TOPIC, AttributeName="SignatureVersion", AttributeValue="2")
    sns.publish(TopicArn=TOPIC, Message="sha256")
    post = wait_until("the second notification", lambda: endpoint.notifications()[1:])[0]
    note = json.loads(post["body"])
    assert note["SignatureVersion"] == "2" and verify(note) == "SHA-256"
    # A tampered message does not verify.
    note["Message"] = "tampered"
    with pytest.raises(rsa.VerificationError):
        verify(note)

    # Raw delivery: the message alone.
    sns.set_subscription_attributes(SubscriptionArn=arn, AttributeName="RawMessageDelivery",
                                    AttributeValue="true")
    sns.publish(TopicArn=TOPIC, Message="just this")
    post = wait_until("the raw notification", lambda: endpoint.notifications()[2:])[0]
    assert post["body"] == "just this"
    assert post["headers"]["x-amz-sns-rawdelivery"] == "true"

    # Unsubscribed: nothing more arrives.
    sns.unsubscribe(SubscriptionArn=arn)
    sns.publish(TopicArn=TOPIC, Message="after unsubscribe")
    time.sleep(0.5)
    assert len(endpoint.notifications()) == 3


@pytest.mark.parametrize("protocol, url, message", [
    ("https", "http://127.0.0.1:9/hook", "Invalid parameter: Endpoint must match the specified protocol"),
    ("http", "http://", "Invalid parameter: Endpoint must match the specified protocol"),
    ("email", "ops@example.com", "Invalid parameter: Protocol Reason: nimbus delivers sqs, lambda, http and https subscriptions; email is not served yet"),
])
def test_bad_http_subscriptions_get_snss_errors(start_nimbus, protocol, url, message):
    n = start_nimbus(TEMPLATE)
    sns = n.client("sns")
    with pytest.raises(ClientError) as bad:
        sns.subscribe(TopicArn=TOPIC, Protocol=protocol, Endpoint=url)
    assert code_and_message(bad) == ("InvalidParameter", message)
    assert sns.list_subscriptions_by_topic(TopicArn=TOPIC)["Subscriptions"] == []


@pytest.mark.parametrize("policy, message", [
    ("{not json", "Invalid parameter: DeliveryPolicy: not valid JSON"),
    ('{"healthyRetryPolicy": {"minDelayTarget": 0}}',
     "Invalid parameter: DeliveryPolicy: minDelayTarget must be at least 1"),
    ('{"healthyRetryPolicy": {"numRetries": 101}}',
     "Invalid parameter: DeliveryPolicy: numRetries must be at most 100"),
])
def test_bad_delivery_policies_are_refused(start_nimbus, endpoint, policy, message):
    n = start_nimbus(TEMPLATE)
    sns = n.client("sns")
    with pytest.raises(ClientError) as bad:
        sns.subscribe(TopicArn=TOPIC, Protocol="http", Endpoint=endpoint.url,
                      Attributes={"DeliveryPolicy": policy})
    assert code_and_message(bad) == ("InvalidParameter", message)


def confirmed(n, sns, endpoint, **attributes):
    """Subscribes `endpoint` and confirms it through the API; its ARN."""
    sns.subscribe(TopicArn=TOPIC, Protocol="http", Endpoint=endpoint.url, Attributes=attributes)
    doc = json.loads(wait_until("the confirmation",
                                lambda: endpoint.of_type("SubscriptionConfirmation"))[0]["body"])
    return sns.confirm_subscription(TopicArn=TOPIC, Token=doc["Token"])["SubscriptionArn"]


def test_failed_deliveries_are_retried_by_the_policy_then_dead_lettered(start_nimbus, endpoint):
    # --delay-scale 0.1: the policy's 1-second delays take 100 ms.
    n = start_nimbus(TEMPLATE, args=("--delay-scale", "0.1"))
    sns, sqs = n.client("sns"), n.client("sqs")
    dlq = sqs.get_queue_url(QueueName="hooks-dlq")["QueueUrl"]
    confirmed(n, sns, endpoint,
              DeliveryPolicy=json.dumps({"healthyRetryPolicy": {
                  "minDelayTarget": 1, "maxDelayTarget": 1, "numRetries": 2}}),
              RedrivePolicy=json.dumps({"deadLetterTargetArn":
                                        "arn:aws:sqs:us-east-1:123456789012:hooks-dlq"}))

    arn = sns.list_subscriptions_by_topic(TopicArn=TOPIC)["Subscriptions"][0]["SubscriptionArn"]
    effective = json.loads(sns.get_subscription_attributes(SubscriptionArn=arn)
                           ["Attributes"]["EffectiveDeliveryPolicy"])
    assert effective["healthyRetryPolicy"]["numRetries"] == 2
    assert effective["requestPolicy"]["headerContentType"] == "text/plain; charset=UTF-8"

    # Two server errors, then success: three attempts with one message id.
    endpoint.answers = [500, 503]
    first = sns.publish(TopicArn=TOPIC, Message="third time lucky")["MessageId"]
    posts = wait_until("three attempts", lambda: [p for p in endpoint.notifications()
                                                  if p["headers"]["x-amz-sns-message-id"] == first][2:])
    assert json.loads(posts[0]["body"])["Message"] == "third time lucky"

    # A 404 is a delivery, as SNS counts it: no retry.
    endpoint.answers = [404]
    second = sns.publish(TopicArn=TOPIC, Message="not found is fine")["MessageId"]
    wait_until("the 404", lambda: [p for p in endpoint.notifications()
                                   if p["headers"]["x-amz-sns-message-id"] == second])
    time.sleep(0.6)
    assert len([p for p in endpoint.notifications()
                if p["headers"]["x-amz-sns-message-id"] == second]) == 1

    # Three failures exhaust two retries: the envelope goes to the dead-letter queue.
    endpoint.answers = [500, 500, 500]
    third = sns.publish(TopicArn=TOPIC, Message="given up")["MessageId"]
    got = wait_until("the dead letter", lambda: sqs.receive_message(
        QueueUrl=dlq, WaitTimeSeconds=1).get("Messages"))
    envelope = json.loads(got[0]["Body"])
    assert (envelope["MessageId"], envelope["Message"]) == (third, "given up")
    assert len([p for p in endpoint.notifications()
                if p["headers"]["x-amz-sns-message-id"] == third]) == 3
    # The topic's CloudWatch-style counts: three messages published, two delivered (the retried
    # one and the 404), one failed; the confirmation counts in neither.
    text = urllib.request.urlopen(n.endpoint + "/metrics", timeout=10).read().decode()
    for line in ['nimbus_sns_messages_published_total{topic="hooks"} 3',
                 'nimbus_sns_notifications_delivered_total{topic="hooks",protocol="http"} 2',
                 'nimbus_sns_notifications_failed_total{topic="hooks",protocol="http"} 1']:
        assert line in text, line


SUBSCRIBED = TEMPLATE + """
  Hook:
    Type: AWS::SNS::Subscription
    Properties:
      TopicArn: !Ref Hooks
      Protocol: http
      Endpoint: URL
      DeliveryPolicy:
        healthyRetryPolicy: {minDelayTarget: 1, maxDelayTarget: 1, numRetries: 50}
"""


def test_deliveries_accepted_before_kill_9_are_made_after_it(start_nimbus, endpoint):
    template = SUBSCRIBED.replace("URL", endpoint.url)
    n = start_nimbus(template)
    sns = n.client("sns")
    doc = json.loads(wait_until("the template subscription's confirmation",
                                lambda: endpoint.of_type("SubscriptionConfirmation"))[0]["body"])
    urllib.request.urlopen(doc["SubscribeURL"], timeout=10).read()

    endpoint.answers = [503] * 1000  # down
    ids = {sns.publish(TopicArn=TOPIC, Message=f"m{i}")["MessageId"] for i in range(5)}
    wait_until("a failed attempt", endpoint.notifications)
    n.proc.kill()
    n.proc.wait()

    with endpoint.lock:
        endpoint.answers = []  # back up
        endpoint.posts = []
    again = start_nimbus(template)
    delivered = wait_until("every accepted message", lambda: (
        ids <= {p["headers"]["x-amz-sns-message-id"] for p in endpoint.notifications()}))
    assert delivered
    # The template's subscription stayed confirmed: no second confirmation was sent.
    assert endpoint.of_type("SubscriptionConfirmation") == []
    subs = again.client("sns").list_subscriptions_by_topic(TopicArn=TOPIC)["Subscriptions"]
    assert subs[0]["SubscriptionArn"] != "PendingConfirmation"
