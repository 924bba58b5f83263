# wasmhook in a container: the stripped `dist` build on Debian's slim image, running as an
# unprivileged user, its data directory a volume. One node: run it as is (SQLite in the
# volume). Replicas: give each the same WASMHOOK_DATABASE_URL and WASMHOOK_SECRETS_KEY, and
# a volume of its own (docs/deploying.md).
#
#   docker build -t wasmhook .
#   docker run -p 8080:8080 -v wasmhook-data:/var/lib/wasmhook wasmhook
#
# The builder installs the toolchain rust-toolchain.toml pins (rustup does, on its first
# cargo call), so only the base images and the package registries need to be reachable.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --locked --profile dist -p wasmhook

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home-dir /var/lib/wasmhook --create-home wasmhook
COPY --from=build /src/target/dist/wasmhook /usr/local/bin/wasmhook
USER wasmhook
ENV WASMHOOK_LISTEN=0.0.0.0:8080 \
    WASMHOOK_DATA_DIR=/var/lib/wasmhook
VOLUME /var/lib/wasmhook
EXPOSE 8080
# /readyz: 200 while the database answers with this build's schema, 503 once stopping.
# bash, not sh: /dev/tcp is bash's (the slim image has no curl).
HEALTHCHECK --interval=10s --timeout=3s \
    CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /readyz HTTP/1.0\\r\\n\\r\\n' >&3 && head -1 <&3 | grep -q ' 200 '"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/wasmhook", "serve"]
