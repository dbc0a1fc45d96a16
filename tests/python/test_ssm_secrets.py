"""Parameter Store and Secrets Manager against nimbus with boto3 and the AWS CLI: every
operation with its errors in AWS's shapes, template parameters and secrets read by a function,
values set with the CLI surviving a restart, and secret values never printed."""

import json

import pytest
from botocore.exceptions import ClientError

from conftest import aws

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Endpoint:
    Type: AWS::SSM::Parameter
    Properties:
      Name: /sls-observe/delivery/endpoint
      Type: String
      Value: https://placeholder.example.com
  Unnamed:
    Type: AWS::SSM::Parameter
    Properties: {Type: StringList, Value: "a,b,c"}
  ApiKey:
    Type: AWS::SecretsManager::Secret
    Properties:
      Name: /sls-observe/delivery/api-key
      SecretString: placeholder-key
  Db:
    Type: AWS::SecretsManager::Secret
    Properties:
      GenerateSecretString:
        SecretStringTemplate: '{"username": "app"}'
        GenerateStringKey: password
        PasswordLength: 20
        ExcludePunctuation: true
  Reader:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      CodeUri: src
      Handler: app.handler
      Timeout: 20
      Environment:
        Variables:
          PARAM: !Ref Endpoint
          SECRET: !Ref ApiKey
          DB_SECRET: !GetAtt Db.Id
"""

APP = '''
import json, os
import boto3

def handler(event, context):
    ssm = boto3.client("ssm")
    sm = boto3.client("secretsmanager")
    return {
        "param": ssm.get_parameter(Name=os.environ["PARAM"])["Parameter"]["Value"],
        "secret": sm.get_secret_value(SecretId=os.environ["SECRET"])["SecretString"],
        "db_user": json.loads(sm.get_secret_value(SecretId=os.environ["DB_SECRET"])["SecretString"])["username"],
    }
'''

BARE = """
Resources:
  Q:
    Type: AWS::SQS::Queue
"""


def code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def message(excinfo):
    return excinfo.value.response["Error"]["Message"]


@pytest.fixture
def n(start_nimbus):
    return start_nimbus(BARE)


def test_parameters_keep_versions_labels_and_paths(n):
    ssm = n.client("ssm")
    first = ssm.put_parameter(Name="/app/db/url", Value="v1", Type="String")
    assert (first["Version"], first["Tier"]) == (1, "Standard")
    with pytest.raises(ClientError) as e:
        ssm.put_parameter(Name="/app/db/url", Value="v2", Type="String")
    assert code(e) == "ParameterAlreadyExists"
    assert message(e) == "The parameter already exists. To overwrite this value, set the overwrite option in the request to true."
    assert ssm.put_parameter(Name="/app/db/url", Value="v2", Overwrite=True)["Version"] == 2
    p = ssm.get_parameter(Name="/app/db/url")["Parameter"]
    assert (p["Value"], p["Version"], p["Type"], p["DataType"]) == ("v2", 2, "String", "text")
    assert p["ARN"] == "arn:aws:ssm:us-east-1:123456789012:parameter/app/db/url"
    assert ssm.get_parameter(Name="/app/db/url:1")["Parameter"]["Value"] == "v1"
    assert ssm.get_parameter(Name=p["ARN"])["Parameter"]["Value"] == "v2"

    labelled = ssm.label_parameter_version(Name="/app/db/url", ParameterVersion=1, Labels=["stable", "1bad"])
    assert labelled["InvalidLabels"] == ["1bad"] and labelled["ParameterVersion"] == 1
    got = ssm.get_parameter(Name="/app/db/url:stable")["Parameter"]
    assert (got["Value"], got["Selector"]) == ("v1", ":stable")
    history = ssm.get_parameter_history(Name="/app/db/url")["Parameters"]
    assert [(h["Version"], h["Value"], h["Labels"]) for h in history] == [(1, "v1", ["stable"]), (2, "v2", [])]

    for i in range(12):
        ssm.put_parameter(Name=f"/app/cfg/k{i:02}", Value=str(i), Type="String")
    ssm.put_parameter(Name="/app/cfg/deep/x", Value="deep", Type="String")
    ssm.put_parameter(Name="/app/secret", Value="hunter2", Type="SecureString")
    one_level, token = [], None
    while True:
        page = ssm.get_parameters_by_path(Path="/app/cfg", **({"NextToken": token} if token else {}))
        one_level += [p["Name"] for p in page["Parameters"]]
        token = page.get("NextToken")
        if not token:
            break
    assert one_level == [f"/app/cfg/k{i:02}" for i in range(12)], "direct children only, over two pages"
    everything = ssm.get_parameters_by_path(Path="/app", Recursive=True, MaxResults=10)
    assert "NextToken" in everything
    hidden = ssm.get_parameter(Name="/app/secret")["Parameter"]["Value"]
    assert hidden != "hunter2", "a SecureString is not shown without WithDecryption"
    assert ssm.get_parameter(Name="/app/secret", WithDecryption=True)["Parameter"]["Value"] == "hunter2"

    both = ssm.get_parameters(Names=["/app/db/url", "/nope"])
    assert [p["Name"] for p in both["Parameters"]] == ["/app/db/url"] and both["InvalidParameters"] == ["/nope"]
    described = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Option": "BeginsWith", "Values": ["/app/db"]}])
    assert [d["Name"] for d in described["Parameters"]] == ["/app/db/url"]
    assert "Value" not in described["Parameters"][0]

    deleted = ssm.delete_parameters(Names=["/app/cfg/k00", "/app/cfg/none"])
    assert deleted["DeletedParameters"] == ["/app/cfg/k00"] and deleted["InvalidParameters"] == ["/app/cfg/none"]
    ssm.delete_parameter(Name="/app/db/url")
    with pytest.raises(ClientError) as e:
        ssm.get_parameter(Name="/app/db/url")
    assert code(e) == "ParameterNotFound"


@pytest.mark.parametrize("kwargs, error", [
    ({"Name": "awsy", "Value": "x", "Type": "String"}, "ValidationException"),
    ({"Name": "no/leading/slash", "Value": "x", "Type": "String"}, "ValidationException"),
    ({"Name": "/x", "Value": "x", "Type": "Number"}, "ValidationException"),
    ({"Name": "/x", "Value": "x"}, "ValidationException"),
    ({"Name": "/x", "Value": "x" * 4097, "Type": "String"}, "ValidationException"),
    ({"Name": "/x", "Value": "abc", "Type": "String", "AllowedPattern": "^\\d+$"}, "ParameterPatternMismatchException"),
    ({"Name": "/l" * 16, "Value": "x", "Type": "String"}, "HierarchyLevelLimitExceededException"),
])
def test_bad_parameters_are_refused_with_parameter_stores_errors(n, kwargs, error):
    ssm = n.client("ssm")
    with pytest.raises(ClientError) as e:
        ssm.put_parameter(**kwargs)
    assert code(e) == error
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as e:
        ssm.get_parameter(Name=kwargs["Name"][:2048])
    assert code(e) in ("ParameterNotFound", "ValidationException"), "nothing half written"


def test_secrets_keep_stages_deletion_windows_and_their_values_to_themselves(n):
    sm = n.client("secretsmanager")
    created = sm.create_secret(Name="app/db", SecretString='{"password": "one"}')
    assert created["ARN"].startswith("arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-")
    with pytest.raises(ClientError) as e:
        sm.create_secret(Name="app/db", SecretString="x")
    assert code(e) == "ResourceExistsException"
    sm.put_secret_value(SecretId="app/db", SecretString='{"password": "two"}')
    assert json.loads(sm.get_secret_value(SecretId="app/db")["SecretString"]) == {"password": "two"}
    prev = sm.get_secret_value(SecretId=created["ARN"], VersionStage="AWSPREVIOUS")
    assert json.loads(prev["SecretString"]) == {"password": "one"}
    assert prev["VersionStages"] == ["AWSPREVIOUS"]
    partial_arn = created["ARN"].rsplit("-", 1)[0]
    assert sm.get_secret_value(SecretId=partial_arn)["Name"] == "app/db"

    described = sm.describe_secret(SecretId="app/db")
    assert sorted(s for v in described["VersionIdsToStages"].values() for s in v) == ["AWSCURRENT", "AWSPREVIOUS"]
    assert "two" not in json.dumps(described, default=str) and "two" not in json.dumps(sm.list_secrets(), default=str)

    sm.update_secret(SecretId="app/db", Description="the database")
    assert sm.describe_secret(SecretId="app/db")["Description"] == "the database"

    with pytest.raises(ClientError) as e:
        sm.delete_secret(SecretId="app/db", RecoveryWindowInDays=3)
    assert code(e) == "InvalidParameterException"
    deleted = sm.delete_secret(SecretId="app/db", RecoveryWindowInDays=7)
    assert deleted["Name"] == "app/db" and "DeletionDate" in deleted
    with pytest.raises(ClientError) as e:
        sm.get_secret_value(SecretId="app/db")
    assert code(e) == "InvalidRequestException"
    assert message(e) == "You can't perform this operation on the secret because it was marked for deletion."
    assert [s["Name"] for s in sm.list_secrets()["SecretList"]] == []
    assert [s["Name"] for s in sm.list_secrets(IncludePlannedDeletion=True)["SecretList"]] == ["app/db"]
    sm.restore_secret(SecretId="app/db")
    assert sm.get_secret_value(SecretId="app/db")["SecretString"] == '{"password": "two"}'
    sm.delete_secret(SecretId="app/db", ForceDeleteWithoutRecovery=True)
    with pytest.raises(ClientError) as e:
        sm.get_secret_value(SecretId="app/db")
    assert code(e) == "ResourceNotFoundException"
    assert message(e) == "Secrets Manager can't find the specified secret."
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400

    pw = sm.get_random_password(PasswordLength=24, ExcludePunctuation=True)["RandomPassword"]
    assert len(pw) == 24 and pw.isalnum()
    with pytest.raises(ClientError) as e:
        sm.get_random_password(PasswordLength=2)
    assert code(e) == "InvalidParameterException"


def test_template_values_reach_functions_and_cli_changes_survive_a_restart(start_nimbus):
    files = {"src/app.py": APP}
    n = start_nimbus(TEMPLATE, files)
    n.wait_for("nimbus: SSM parameter /sls-observe/delivery/endpoint")
    n.wait_for("nimbus: secret /sls-observe/delivery/api-key arn:aws:secretsmanager:")
    out = json.loads(n.client("lambda").invoke(FunctionName="Reader")["Payload"].read())
    assert out == {"param": "https://placeholder.example.com", "secret": "placeholder-key", "db_user": "app"}
    assert n.client("ssm").get_parameter(Name="Unnamed")["Parameter"]["Type"] == "StringList"

    # As the seed repo's README has its users do, against nimbus's endpoint.
    # (AWS CLI v1 fetches a --value that looks like a URL, so the URL goes in as JSON.)
    rc, answer, err = aws(n, "ssm", "put-parameter", "--cli-input-json", json.dumps({
        "Name": "/sls-observe/delivery/endpoint", "Value": "http://127.0.0.1:9/slow",
        "Type": "String", "Overwrite": True}))
    assert rc == 0 and answer["Version"] == 2, err
    rc, _, err = aws(n, "secretsmanager", "put-secret-value", "--secret-id", "/sls-observe/delivery/api-key",
                     "--secret-string", "real-key-123")
    assert rc == 0, err
    n.stop()

    again = start_nimbus(TEMPLATE, files)
    out = json.loads(again.client("lambda").invoke(FunctionName="Reader")["Payload"].read())
    assert out["param"] == "http://127.0.0.1:9/slow" and out["secret"] == "real-key-123", "the template does not clobber them"
    printed = "\n".join(n.lines + again.lines)
    assert "real-key-123" not in printed and "placeholder-key" not in printed, "secret values are never printed"


def test_a_securestring_in_a_template_is_refused_as_cloudformation_refuses_it(start_nimbus, tmp_path):
    bad = """
Resources:
  P:
    Type: AWS::SSM::Parameter
    Properties: {Type: SecureString, Value: x}
"""
    (tmp_path / "template.yaml").write_text(bad)
    import subprocess
    from conftest import NIMBUS
    out = subprocess.run([str(NIMBUS), "validate", str(tmp_path / "template.yaml")], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    said = out.stderr + out.stdout
    assert "Resources.P.Properties (line " in said
    assert "SSM Parameters of type SecureString cannot be created using CloudFormation" in said


DYNREF_TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Endpoint:
    Type: AWS::SSM::Parameter
    Properties: {Name: /app/endpoint, Type: String, Value: "http://example.test/v1"}
  Db:
    Type: AWS::SecretsManager::Secret
    Properties:
      Name: app/db
      SecretString: '{"username": "app", "password": "s3cret-pw"}'
  Env:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      CodeUri: src
      Handler: env.handler
      Environment:
        Variables:
          URL: "{{resolve:ssm:/app/endpoint}}"
          DSN: "postgres://{{resolve:secretsmanager:app/db:SecretString:username}}:{{resolve:secretsmanager:app/db:SecretString:password}}@db"
"""

ENV_APP = '''
import os
def handler(event, context):
    return {"URL": os.environ["URL"], "DSN": os.environ["DSN"]}
'''


def test_dynamic_references_in_a_functions_environment_resolve_from_nimbus(start_nimbus):
    n = start_nimbus(DYNREF_TEMPLATE, {"src/env.py": ENV_APP})
    out = json.loads(n.client("lambda").invoke(FunctionName="Env")["Payload"].read())
    assert out == {"URL": "http://example.test/v1", "DSN": "postgres://app:s3cret-pw@db"}
    assert "s3cret-pw" not in "\n".join(n.lines)


def test_a_dynamic_reference_to_nothing_stops_the_start_naming_it(tmp_path):
    import subprocess
    from conftest import NIMBUS
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "env.py").write_text(ENV_APP)
    (tmp_path / "template.yaml").write_text(DYNREF_TEMPLATE.replace("/app/endpoint}}", "/app/missing}}"))
    out = subprocess.run([str(NIMBUS), "up", str(tmp_path / "template.yaml"), "--aws-port", "0", "--api-port", "0"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "function Env Environment.Variables.URL: {{resolve:ssm:/app/missing}}: ParameterNotFound" in out.stderr
    assert "nothing was started" in out.stderr


SSM_TYPED_TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Parameters:
  Endpoint:
    Type: AWS::SSM::Parameter::Value<String>
    Default: /app/endpoint
Resources:
  Stored:
    Type: AWS::SSM::Parameter
    Properties: {Name: /app/endpoint, Type: String, Value: "http://example.test/v1"}
  Env:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      CodeUri: src
      Handler: env.handler
      Environment:
        Variables: {URL: !Ref Endpoint, DSN: unused}
"""


def test_an_ssm_typed_parameter_reads_nimbus_parameter_store(start_nimbus):
    files = {"src/env.py": ENV_APP}
    n = start_nimbus(SSM_TYPED_TEMPLATE, files)
    # The first start has no Parameter Store yet: the name stands in, with a warning.
    assert 'parameter "Endpoint" reads the SSM parameter "/app/endpoint", which nimbus\'s Parameter Store does not have' in n.stderr
    out = json.loads(n.client("lambda").invoke(FunctionName="Env")["Payload"].read())
    assert out["URL"] == "/app/endpoint"
    n.client("ssm").put_parameter(Name="/app/endpoint", Value="http://changed.test", Type="String", Overwrite=True)
    n.stop()

    # Started again, `Ref` gives the stored value, as CloudFormation resolves it at deploy.
    again = start_nimbus(SSM_TYPED_TEMPLATE, files)
    out = json.loads(again.client("lambda").invoke(FunctionName="Env")["Payload"].read())
    assert out["URL"] == "http://changed.test"
    assert "does not have" not in again.stderr
