#!/usr/bin/env bash
# Benchmark: what the ways of declaring a REST route cost, side by side in one nimbus, with wrk
# (keep-alive, concurrency 1):
#   sam       GET /sam/{id} from a function's `Api` event (the route nimbus always served)
#   openapi   GET /oas/{id} from an OpenAPI DefinitionBody (aws_proxy) to the same function
#   mapping   GET /mock/{id}: a MOCK integration with a request and a response mapping template
#             (Velocity), no function
#   dynamodb  GET /car/{id}: an AWS integration to DynamoDB GetItem (request and response
#             templates), no function, through nimbus's AWS endpoint in-process
#   direct    the same function through the Lambda Invoke API
#   getitem   the same GetItem sent straight to the AWS endpoint (what the dynamodb route adds
#             to it is the gateway's share)
# Prints p50/p99 and requests/s, the gateway's overhead over a direct invoke for the two function
# routes, and PASS/MISS: the OpenAPI route's p50 within 10% of the SAM route's; the mapping route's
# p50 no higher than the SAM route's (it runs no function).
# Exits 0 whether targets are met or not; non-zero only if something failed to run.
#
# Environment:
#   CARGO_TARGET_DIR   cargo's target dir (default: ./target of the workspace)
#   BENCH_DURATION     seconds per measured wrk run (default 5)
#   BENCH_NO_BUILD=1   skip `cargo build`
# Load generator: wrk (Debian package; installed with apt-get when missing). Traffic: 127.0.0.1 only.
set -euo pipefail

DUR=${BENCH_DURATION:-5}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/target}")
T_START=$EPOCHREALTIME

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_load_tools

build -p nimbus --bin nimbus --example testfn
NIMBUS=$TARGET/release/nimbus
TESTFN=$TARGET/release/examples/testfn
[[ -x $NIMBUS && -x $TESTFN ]] || die "missing $NIMBUS or $TESTFN"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nimbus-routes.XXXXXX")
mkdir -p "$WORK/app/fn"
ln -s "$TESTFN" "$WORK/app/fn/bootstrap"
cat >"$WORK/app/template.yaml" <<'EOF'
Transform: AWS::Serverless-2016-10-31
Resources:
  Cars:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: cars
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: id, AttributeType: S}]
      KeySchema: [{AttributeName: id, KeyType: HASH}]
  Echo:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn
      Handler: bootstrap
      Runtime: provided.al2023
      Timeout: 10
      Events:
        Sam:
          Type: Api
          Properties: {Path: "/sam/{id}", Method: get}
  Defined:
    Type: AWS::Serverless::Api
    Properties:
      StageName: Prod
      DefinitionBody:
        openapi: "3.0.1"
        info: {title: routes, version: "1"}
        paths:
          /oas/{id}:
            get:
              x-amazon-apigateway-integration:
                type: aws_proxy
                httpMethod: POST
                uri: !Sub "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Echo.Arn}/invocations"
          /mock/{id}:
            get:
              x-amazon-apigateway-integration:
                type: mock
                requestTemplates:
                  application/json: '{"statusCode": #if($input.params(''id'') == "404")404#{else}200#end}'
                responses:
                  default:
                    statusCode: "200"
                    responseTemplates:
                      application/json: '{"id": "$input.params(''id'')", "stage": "$context.stage", "request": "$context.requestId"}'
          /car/{id}:
            get:
              x-amazon-apigateway-integration:
                type: aws
                httpMethod: POST
                uri: arn:aws:apigateway:us-east-1:dynamodb:action/GetItem
                requestTemplates:
                  application/json: '{"TableName": "cars", "Key": {"id": {"S": "$input.params(''id'')"}}}'
                responses:
                  default:
                    statusCode: "200"
                    responseTemplates:
                      application/json: '#set($item = $input.path(''$.Item'')){"id": "$item.id.S", "make": "$item.make.S"}'
EOF
cat >"$WORK/getitem.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"TableName": "cars", "Key": {"id": {"S": "7"}}}'
wrk.headers["Content-Type"] = "application/x-amz-json-1.0"
wrk.headers["X-Amz-Target"] = "DynamoDB_20120810.GetItem"
EOF
cat >"$WORK/post.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"action":"echo"}'
wrk.headers["Content-Type"] = "application/json"
EOF

nimbus_up "$NIMBUS" "$WORK/nimbus.log" 60 "$WORK/app/template.yaml" --aws-port 0 --api-port 0 \
    --state-dir "$WORK/state" --shutdown-grace 1
SAM_BASE=$(sed -n 's/^nimbus: REST API ServerlessRestApi (stage [^)]*) //p' "$WORK/nimbus.log" | head -1)
OAS_BASE=$(sed -n 's/^nimbus: REST API Defined (stage [^)]*) //p' "$WORK/nimbus.log" | head -1)
[[ -n $SAM_BASE && -n $OAS_BASE ]] || { cat "$WORK/nimbus.log" >&2; die "no API URLs in nimbus output"; }

curl -sS --max-time 10 -o /dev/null -X POST "$EP/" -H 'Content-Type: application/x-amz-json-1.0' \
    -H 'X-Amz-Target: DynamoDB_20120810.PutItem' \
    -d '{"TableName": "cars", "Item": {"id": {"S": "7"}, "make": {"S": "Volvo"}}}' || die "PutItem failed"

measure() { # name url [lua] -> sets <name>_P50 <name>_P99 <name>_RPS
    local name=$1 url=$2 lua=${3:-}
    local args=(-t1 -c1 --timeout 5s)
    [[ -n $lua ]] && args+=(-s "$lua")
    if [[ -z $lua ]]; then
        curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "$url" |
            grep -q '^200$' || die "$name: $url does not answer 200"
    fi
    wrk_measure "$name-warmup" 1 "$WORK/wrk-$name-w.txt" "${args[@]}" "$url"
    wrk_measure "$name" "$DUR" "$WORK/wrk-$name.txt" "${args[@]}" "$url"
    printf -v "${name}_P50" %s "$P50"; printf -v "${name}_P99" %s "$P99"; printf -v "${name}_RPS" %s "$RPS"
    log "$name: p50 $P50 ms, p99 $P99 ms, $RPS req/s"
}
measure sam "$SAM_BASE/sam/7"
measure openapi "$OAS_BASE/oas/7"
measure mapping "$OAS_BASE/mock/7"
measure dynamodb "$OAS_BASE/car/7"
measure direct "$EP/2015-03-31/functions/Echo/invocations" "$WORK/post.lua"
measure getitem "$EP/" "$WORK/getitem.lua"

over() { awk -v a="$1" -v b="$direct_P50" 'BEGIN {printf "%.0f", (a - b) * 1000}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.3f", a / b }'; }
echo
echo "REST routes, one nimbus, wrk keep-alive at concurrency 1, ${DUR}s each; $(nproc) CPUs"
printf '%-40s %10s %10s %10s %16s\n' "route" "p50 ms" "p99 ms" "req/s" "over direct, us"
printf '%-40s %10s %10s %10s %16s\n' "SAM Api event -> function" "$sam_P50" "$sam_P99" "$sam_RPS" "$(over "$sam_P50")"
printf '%-40s %10s %10s %10s %16s\n' "OpenAPI aws_proxy -> function" "$openapi_P50" "$openapi_P99" "$openapi_RPS" "$(over "$openapi_P50")"
printf '%-40s %10s %10s %10s %16s\n' "MOCK + mapping templates (no function)" "$mapping_P50" "$mapping_P99" "$mapping_RPS" "-"
printf '%-40s %10s %10s %10s %16s\n' "AWS integration -> DynamoDB GetItem" "$dynamodb_P50" "$dynamodb_P99" "$dynamodb_RPS" "$(awk -v a="$dynamodb_P50" -v b="$getitem_P50" 'BEGIN {printf "%.0f over GetItem", (a - b) * 1000}')"
printf '%-40s %10s %10s %10s %16s\n' "direct Invoke API" "$direct_P50" "$direct_P99" "$direct_RPS" "-"
printf '%-40s %10s %10s %10s %16s\n' "direct DynamoDB GetItem" "$getitem_P50" "$getitem_P99" "$getitem_RPS" "-"
echo
R_OAS=$(ratio "$openapi_P50" "$sam_P50")
R_MAP=$(ratio "$mapping_P50" "$sam_P50")
printf '%-52s %8s %8s  %s\n' "target" "value" "goal" "result"
printf '%-52s %8s %8s  %s\n' "OpenAPI route p50 / SAM route p50" "$R_OAS" "<= 1.10" "$(verdict "$R_OAS" "<=" 1.10)"
printf '%-52s %8s %8s  %s\n' "mapping-template route p50 / SAM route p50" "$R_MAP" "<= 1.00" "$(verdict "$R_MAP" "<=" 1.00)"
echo "total time: $(awk -v a="$T_START" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.0f", b - a}')s"
exit 0
