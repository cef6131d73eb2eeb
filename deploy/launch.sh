#!/usr/bin/env bash
# Build the Dataflow Flex Template once per release, then launch it (by hand, from cron, Cloud
# Scheduler or Airflow: see airflow_dag.py). Run from the repository root.
#
#   PROJECT=my-project REGION=europe-west1 BUCKET=my-bucket deploy/launch.sh build
#   PROJECT=... REGION=... BUCKET=... deploy/launch.sh run                 # incremental
#   PROJECT=... REGION=... BUCKET=... deploy/launch.sh backfill 2026-01-01 2026-04-01
set -euo pipefail
: "${PROJECT:?set PROJECT}" "${REGION:?set REGION}" "${BUCKET:?set BUCKET}"
IMAGE="${REGION}-docker.pkg.dev/${PROJECT}/dataflow/social-listening:${TAG:-latest}"
# The workers' image: the project and the embedded model's cache prebuilt (worker.Dockerfile).
WORKER_IMAGE="${REGION}-docker.pkg.dev/${PROJECT}/dataflow/social-listening-worker:${TAG:-latest}"
TEMPLATE="gs://${BUCKET}/templates/social-listening.json"
COMMON=(
  --project "$PROJECT" --region "$REGION"
  --temp-location "gs://${BUCKET}/tmp" --staging-location "gs://${BUCKET}/staging"
  --worker-machine-type "${MACHINE_TYPE:-n2-standard-4}" --max-workers "${MAX_WORKERS:-10}"
  --additional-experiments use_runner_v2
)
PARAMS="config=gs://${BUCKET}/brands.yaml,input=gs://${BUCKET}/mentions/*.jsonl,output_dir=gs://${BUCKET}/listening"
PARAMS="${PARAMS},sdk_container_image=${WORKER_IMAGE}"

case "${1:-}" in
  build)
    gcloud builds submit --project "$PROJECT" --config deploy/cloudbuild.yaml \
      --substitutions "_IMAGE=${IMAGE},_WORKER_IMAGE=${WORKER_IMAGE}" .
    gcloud dataflow flex-template build "$TEMPLATE" --image "$IMAGE" --sdk-language PYTHON \
      --metadata-file deploy/flex_template_metadata.json
    ;;
  run)  # the days since the last successful run, up to today (UTC, exclusive)
    gcloud dataflow flex-template run "social-listening-$(date -u +%Y%m%d-%H%M%S)" \
      --template-file-gcs-location "$TEMPLATE" "${COMMON[@]}" \
      --parameters "${PARAMS},incremental=true,window_start=${FIRST_DAY:-2026-01-01}"
    ;;
  backfill)  # one explicit window [START, END): rewrites exactly those days' partitions
    gcloud dataflow flex-template run "social-listening-backfill-${2//-/}-${3//-/}" \
      --template-file-gcs-location "$TEMPLATE" "${COMMON[@]}" \
      --parameters "${PARAMS},window_start=${2:?START},window_end=${3:?END}"
    ;;
  *)
    echo "usage: $0 build | run | backfill START END" >&2
    exit 2
    ;;
esac
