#!/usr/bin/env bash
# TF Serving REST requests: model status, metadata, predictions (row and
# columnar formats). Works the same against TF Serving and `mtrec serve`.
#
#   serving/examples/rest_requests.sh [HOST:PORT] [MODEL]     # default localhost:8501 esmm
set -euo pipefail
TARGET=${1:-localhost:8501}
MODEL=${2:-esmm}
HERE=$(cd "$(dirname "$0")" && pwd)
URL="http://$TARGET/v1/models/$MODEL"
CURL=(curl --silent --show-error --fail-with-body)

echo "# GET $URL  (version status)"
"${CURL[@]}" "$URL"
echo

echo "# GET $URL/metadata  (signatures: inputs by feature name, outputs ctr/cvr/ctcvr)"
"${CURL[@]}" "$URL/metadata" | head -c 400
echo " ..."

echo "# POST $URL:predict  (row format: one object per candidate)"
"${CURL[@]}" -X POST -H 'Content-Type: application/json' \
  -d @"$HERE/predict_request.json" "$URL:predict"
echo

echo "# POST $URL:predict  (columnar format: one list per feature)"
"${CURL[@]}" -X POST -H 'Content-Type: application/json' -d '{
  "signature_name": "serving_default",
  "inputs": {
    "user_id": [30231, 30231], "user_age": ["45-54", "45-54"],
    "user_gender": ["m", "m"], "user_activity": [15.0, 15.0],
    "device": ["android", "android"], "hour": [18, 18],
    "recent_categories": ["c46|c12|c8", "c46|c12|c8"],
    "item_id": [65720, 17519], "item_category": ["c8", "c40"],
    "item_price": [17.8, 17.74], "item_hist_ctr": [0.0258, 0.0276],
    "position": [1, 2]
  }
}' "$URL:predict"
echo

echo "# a bad request: TF Serving-shaped error, HTTP 400"
curl --silent --show-error -X POST -d '{"instances": [{"user_id": "abc"}]}' \
  -w ' (HTTP %{http_code})\n' "$URL:predict"
