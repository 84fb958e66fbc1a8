#!/usr/bin/env bash
# The kind tier: the synthesized `minimal` example on a real Kubernetes (kind), with the image built from this
# checkout. Needs Docker, kind and kubectl; not part of `npm test` (no Docker engine on the development machines),
# run by .github/workflows/kind.yml. From the repository root, after `npm ci`:
#
#   test/kind/run.sh            # creates the cluster, runs, deletes the cluster
#   KEEP_CLUSTER=1 test/kind/run.sh
#
# Steps: build runtime/Dockerfile and `kind load` it; synthesize (`npm run synth` → dist/minimal); install the
# ServingRuntime CRD the example uses (upstream's, at the modelmesh-serving release the constructs follow); start the
# MinIO the example names (`http://minio:9000`, bucket `models` readable anonymously) holding the sample model at the
# declared path; apply the example; wait for etcd and the runtime Deployment to roll out; send one KServe v2 REST
# inference through the `modelmesh-serving` Service and check the answer.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CLUSTER=${CLUSTER:-cdk8s-modelmesh}
NAMESPACE=modelmesh
VERSION=$(node -p "require('$REPO/package.json').version")
IMAGE=ghcr.io/cdk8s-modelmesh/modelmesh:$VERSION
MODELMESH_SERVING=v0.12.0
CRD_URL=https://raw.githubusercontent.com/kserve/modelmesh-serving/$MODELMESH_SERVING/config/crd/bases/serving.kserve.io_servingruntimes.yaml
MINIO_IMAGE=quay.io/minio/minio:RELEASE.2024-12-18T13-15-44Z
MC_IMAGE=quay.io/minio/mc:RELEASE.2024-11-21T17-21-54Z
START=$(date +%s)
say() { printf 'kind [%4ss]: %s\n' "$(( $(date +%s) - START ))" "$*"; }
fail() { printf 'kind: FAILED: %s\n' "$*" >&2; exit 1; }

for tool in docker kind kubectl node; do command -v "$tool" >/dev/null || fail "$tool is not installed"; done

cleanup() {
  local rc=$?
  if [ "$rc" -ne 0 ]; then
    kubectl -n "$NAMESPACE" get pods -o wide 2>&1 || true
    kubectl -n "$NAMESPACE" logs deployment/modelmesh-serving-onnx --all-containers --tail 60 2>&1 || true
  fi
  if [ "${KEEP_CLUSTER:-0}" != 1 ]; then kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

say "creating kind cluster $CLUSTER"
kind get clusters 2>/dev/null | grep -qx "$CLUSTER" || kind create cluster --name "$CLUSTER" --wait 120s

say "building $IMAGE"
docker build -f "$REPO/runtime/Dockerfile" -t "$IMAGE" "$REPO"
kind load docker-image "$IMAGE" --name "$CLUSTER"

say "synthesizing the examples"
(cd "$REPO" && npm run --silent synth)
manifest=$(ls "$REPO"/dist/minimal/*.yaml)
grep -q "image: $IMAGE" $manifest || fail "dist/minimal does not use $IMAGE"

kubectl apply -f "$CRD_URL"
kubectl create namespace "$NAMESPACE" --dry-run=client -o yaml | kubectl apply -f -

say "starting MinIO with the sample model at s3://models/onnx/mnist.onnx"
kubectl -n "$NAMESPACE" apply -f - <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: { name: minio }
spec:
  selector: { matchLabels: { app: minio } }
  template:
    metadata: { labels: { app: minio } }
    spec:
      containers:
        - name: minio
          image: $MINIO_IMAGE
          args: [server, /data]
          ports: [{ containerPort: 9000 }]
          readinessProbe: { httpGet: { path: /minio/health/ready, port: 9000 } }
---
apiVersion: v1
kind: Service
metadata: { name: minio }
spec:
  selector: { app: minio }
  ports: [{ port: 9000, targetPort: 9000 }]
YAML
kubectl -n "$NAMESPACE" rollout status deployment/minio --timeout 180s
kubectl -n "$NAMESPACE" run mc --image "$MC_IMAGE" --restart Never --command -- sleep 600
kubectl -n "$NAMESPACE" wait --for condition=Ready pod/mc --timeout 180s
kubectl -n "$NAMESPACE" exec -i mc -- sh -c 'cat > /tmp/model.onnx' < "$REPO/runtime/models/sample/model.onnx"
kubectl -n "$NAMESPACE" exec mc -- sh -c '
  mc alias set local http://minio:9000 minioadmin minioadmin >/dev/null &&
  mc mb --ignore-existing local/models >/dev/null &&
  mc anonymous set download local/models >/dev/null &&
  mc cp /tmp/model.onnx local/models/onnx/mnist.onnx >/dev/null'
kubectl -n "$NAMESPACE" delete pod mc --wait=false

say "applying dist/minimal"
applied=$(date +%s)
kubectl apply -f "$manifest"
kubectl -n "$NAMESPACE" rollout status statefulset/modelmesh-etcd --timeout 300s
kubectl -n "$NAMESPACE" rollout status deployment/modelmesh-serving-onnx --timeout 300s

say "inference through Service modelmesh-serving (REST port 8008)"
kubectl -n "$NAMESPACE" port-forward service/modelmesh-serving 18008:8008 >/dev/null 2>&1 &
forward=$!
trap 'kill $forward 2>/dev/null || true; cleanup' EXIT
answer=
for _ in $(seq 1 60); do
  answer=$(curl -fsS -m 10 -H 'content-type: application/json' http://127.0.0.1:18008/v2/models/mnist/infer \
    -d '{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}' 2>/dev/null \
    | node -e 'let s="";process.stdin.on("data",(d)=>s+=d).on("end",()=>{try{console.log(JSON.stringify(JSON.parse(s).outputs[0].data))}catch{console.log("")}})') || true
  [ "$answer" = '[2.25,13,4.5]' ] && break
  sleep 2
done
[ "$answer" = '[2.25,13,4.5]' ] || fail "no correct inference of mnist through the Service (last answer: '${answer}')"
say "inference answered $answer, $(( $(date +%s) - applied )) s after kubectl apply"
