//! What `Ref` and `Fn::GetAtt` return for each resource type; the table is in the crate docs.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Function,
    Queue,
    EventBus,
    Rule,
    StateMachine,
    Role,
    Topic,
    Table,
    Alarm,
    LogGroup,
    Layer,
    Secret,
    Bucket,
    Other,
}

pub(crate) fn family(resource_type: &str) -> Family {
    match resource_type {
        "AWS::Serverless::Function" | "AWS::Lambda::Function" => Family::Function,
        "AWS::SQS::Queue" => Family::Queue,
        "AWS::Events::EventBus" => Family::EventBus,
        "AWS::Events::Rule" => Family::Rule,
        "AWS::Serverless::StateMachine" | "AWS::StepFunctions::StateMachine" => {
            Family::StateMachine
        }
        "AWS::IAM::Role" => Family::Role,
        "AWS::SNS::Topic" => Family::Topic,
        "AWS::DynamoDB::Table" | "AWS::Serverless::SimpleTable" => Family::Table,
        "AWS::CloudWatch::Alarm" => Family::Alarm,
        "AWS::Logs::LogGroup" => Family::LogGroup,
        "AWS::Serverless::LayerVersion" | "AWS::Lambda::LayerVersion" => Family::Layer,
        "AWS::SecretsManager::Secret" => Family::Secret,
        "AWS::S3::Bucket" => Family::Bucket,
        _ => Family::Other,
    }
}

/// The property that sets a resource's physical name, if the type has one.
pub(crate) fn name_property(resource_type: &str) -> Option<&'static str> {
    Some(match resource_type {
        "AWS::Serverless::Function" | "AWS::Lambda::Function" => "FunctionName",
        "AWS::SQS::Queue" => "QueueName",
        "AWS::Events::EventBus" | "AWS::Events::Rule" | "AWS::Serverless::StateMachine" => "Name",
        "AWS::StepFunctions::StateMachine" => "StateMachineName",
        "AWS::IAM::Role" => "RoleName",
        "AWS::SNS::Topic" => "TopicName",
        "AWS::DynamoDB::Table" | "AWS::Serverless::SimpleTable" => "TableName",
        "AWS::CloudWatch::Alarm" => "AlarmName",
        "AWS::Logs::LogGroup" => "LogGroupName",
        "AWS::S3::Bucket" => "BucketName",
        "AWS::Serverless::LayerVersion" | "AWS::Lambda::LayerVersion" => "LayerName",
        "AWS::ApiGateway::Stage" | "AWS::ApiGatewayV2::Stage" => "StageName",
        "AWS::SSM::Parameter" | "AWS::SecretsManager::Secret" => "Name",
        _ => return None,
    })
}

/// The attributes `Fn::GetAtt` accepts; `None` for types nimbus does not model, where any
/// attribute gets a placeholder.
pub(crate) fn attributes(f: Family) -> Option<&'static [&'static str]> {
    Some(match f {
        Family::Function => &["Arn"],
        Family::Queue => &["Arn", "QueueName", "QueueUrl"],
        Family::EventBus => &["Arn", "Name"],
        Family::Rule => &["Arn"],
        Family::StateMachine => &["Arn", "Name"],
        Family::Role => &["Arn", "RoleId"],
        Family::Topic => &["TopicArn", "TopicName"],
        Family::Table => &["Arn", "StreamArn"],
        Family::Alarm => &["Arn"],
        Family::LogGroup => &["Arn"],
        // CloudFormation's LayerVersion has no GetAtt attributes; its Ref is the version ARN.
        Family::Layer => &[],
        Family::Secret => &["Id"],
        Family::Bucket => &[
            "Arn",
            "DomainName",
            "DualStackDomainName",
            "RegionalDomainName",
            "WebsiteURL",
        ],
        Family::Other => return None,
    })
}

/// Account, region and partition, the parts every ARN is made of.
#[derive(Debug, Clone)]
pub(crate) struct Env {
    pub partition: String,
    pub region: String,
    pub account: String,
    /// nimbus's AWS endpoint, which queue URLs name.
    pub endpoint: String,
}

impl Env {
    pub fn arn(&self, service: &str, regional: bool, resource: &str) -> String {
        let region = if regional { self.region.as_str() } else { "" };
        format!(
            "arn:{}:{service}:{region}:{}:{resource}",
            self.partition, self.account
        )
    }

    pub fn queue_url(&self, name: &str) -> String {
        format!("{}/{}/{name}", self.endpoint, self.account)
    }

    pub fn function_arn(&self, name: &str) -> String {
        self.arn("lambda", true, &format!("function:{name}"))
    }
}

/// `Ref` of a resource, given its physical name.
pub(crate) fn ref_value(env: &Env, f: Family, name: &str) -> String {
    match f {
        Family::Queue => env.queue_url(name),
        Family::StateMachine => env.arn("states", true, &format!("stateMachine:{name}")),
        Family::Topic => env.arn("sns", true, name),
        // A local stack publishes each layer once: version 1.
        Family::Layer => env.arn("lambda", true, &format!("layer:{name}:1")),
        Family::Secret => crate::secret_arn(&env.region, &env.account, name),
        _ => name.to_string(),
    }
}

/// `Fn::GetAtt` of a resource, given its physical name; `None` for an attribute the type does
/// not have. `rule_bus` is the event bus a rule is on, which AWS puts in the rule's ARN.
pub(crate) fn get_att(
    env: &Env,
    resource_type: &str,
    logical_id: &str,
    name: &str,
    attr: &str,
    rule_bus: Option<&str>,
) -> Option<String> {
    let f = family(resource_type);
    Some(match (f, attr) {
        (Family::Function, "Arn") => env.function_arn(name),
        (Family::Queue, "Arn") => env.arn("sqs", true, name),
        (Family::Queue, "QueueName") => name.to_string(),
        (Family::Queue, "QueueUrl") => env.queue_url(name),
        (Family::EventBus, "Arn") => env.arn("events", true, &format!("event-bus/{name}")),
        (Family::EventBus | Family::StateMachine, "Name") => name.to_string(),
        (Family::Rule, "Arn") => match rule_bus {
            Some(bus) if bus != "default" => env.arn("events", true, &format!("rule/{bus}/{name}")),
            _ => env.arn("events", true, &format!("rule/{name}")),
        },
        (Family::StateMachine, "Arn") => ref_value(env, f, name),
        (Family::Role, "Arn") => env.arn("iam", false, &format!("role/{name}")),
        // Role ids are opaque on AWS; a stable stand-in derived from the name keeps them unique.
        (Family::Role, "RoleId") => format!("AROA{:016X}", fnv1a(name.as_bytes(), 0)),
        (Family::Topic, "TopicArn") => ref_value(env, f, name),
        (Family::Topic, "TopicName") => name.to_string(),
        (Family::Secret, "Id") => ref_value(env, f, name),
        (Family::Table, "Arn") => env.arn("dynamodb", true, &format!("table/{name}")),
        // nimbus-dynamodb labels a template table's stream with this same fixed label
        // (TEMPLATE_STREAM_LABEL), so the ARN resolves before the table exists.
        (Family::Table, "StreamArn") => env.arn(
            "dynamodb",
            true,
            &format!("table/{name}/stream/1970-01-01T00:00:00.000"),
        ),
        (Family::Bucket, "Arn") => format!("arn:{}:s3:::{name}", env.partition),
        (Family::Bucket, "DomainName") => format!("{name}.s3.amazonaws.com"),
        (Family::Bucket, "DualStackDomainName") => {
            format!("{name}.s3.dualstack.{}.amazonaws.com", env.region)
        }
        (Family::Bucket, "RegionalDomainName") => {
            format!("{name}.s3.{}.amazonaws.com", env.region)
        }
        (Family::Bucket, "WebsiteURL") => {
            format!("http://{name}.s3-website-{}.amazonaws.com", env.region)
        }
        (Family::Alarm, "Arn") => env.arn("cloudwatch", true, &format!("alarm:{name}")),
        (Family::LogGroup, "Arn") => env.arn("logs", true, &format!("log-group:{name}:*")),
        (Family::Other, "Arn") => {
            let mut parts = resource_type.split("::").skip(1);
            let service = parts.next().unwrap_or("unknown").to_lowercase();
            let kind = parts.next().unwrap_or("resource").to_lowercase();
            env.arn(&service, true, &format!("{kind}/{logical_id}"))
        }
        (Family::Other, _) => format!("{logical_id}.{attr}"),
        _ => return None,
    })
}

/// FNV-1a: a tiny stable hash for identifiers that must not change between runs.
pub(crate) fn fnv1a(bytes: &[u8], seed: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325 ^ seed;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Env {
        Env {
            partition: "aws".into(),
            region: "eu-west-1".into(),
            account: "111122223333".into(),
            endpoint: "http://127.0.0.1:4566".into(),
        }
    }

    #[test]
    fn arns_follow_each_service_format() {
        let e = env();
        assert_eq!(
            get_att(&e, "AWS::Lambda::Function", "F", "f", "Arn", None).unwrap(),
            "arn:aws:lambda:eu-west-1:111122223333:function:f"
        );
        assert_eq!(
            get_att(&e, "AWS::IAM::Role", "R", "r", "Arn", None).unwrap(),
            "arn:aws:iam::111122223333:role/r"
        );
        assert_eq!(
            get_att(&e, "AWS::Events::Rule", "R", "r", "Arn", Some("orders")).unwrap(),
            "arn:aws:events:eu-west-1:111122223333:rule/orders/r"
        );
        assert_eq!(
            get_att(&e, "AWS::KMS::Key", "K", "K", "Arn", None).unwrap(),
            "arn:aws:kms:eu-west-1:111122223333:key/K"
        );
        assert_eq!(get_att(&e, "AWS::SQS::Queue", "Q", "q", "Nope", None), None);
    }
}
