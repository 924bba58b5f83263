#!/usr/bin/env bash
# The container image, built and run: `docker build` of the repository's Dockerfile, a
# container started from it with a volume of its own, and /readyz asked until it answers
# 200 (the image's HEALTHCHECK asks the same), then the container and volume removed.
# .ci/run calls this where a Docker daemon answers; by hand: bash tools/docker-smoke.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

image=wasmhook-smoke
name=wasmhook-smoke-$$
volume=wasmhook-smoke-$$
cleanup() {
    docker rm -f "$name" >/dev/null 2>&1 || true
    docker volume rm "$volume" >/dev/null 2>&1 || true
    docker image rm "$image" >/dev/null 2>&1 || true
}
trap cleanup EXIT

docker build -t "$image" .
docker run -d --name "$name" -p 127.0.0.1::8080 -v "$volume:/var/lib/wasmhook" "$image" >/dev/null
port=$(docker port "$name" 8080/tcp | head -1 | sed 's/.*://')
for _ in $(seq 1 60); do
    if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then
        curl -fsS "http://127.0.0.1:$port/api/v1/version"
        echo
        # The image's own health check agrees once its first interval has passed.
        sleep 12
        health=$(docker inspect -f '{{.State.Health.Status}}' "$name")
        [ "$health" = healthy ] || { echo "health check says $health"; docker logs "$name"; exit 1; }
        echo "the container answers and is healthy"
        exit 0
    fi
    sleep 2
done
echo "the container never answered /readyz"
docker logs "$name"
exit 1
