# syntax=docker/dockerfile:1
# One image with both binaries, `coordinator` and `worker`, in /usr/local/bin, and the example
# sweeps in /examples. Used by docker-compose.yml and deploy/kubernetes:
#   docker build -t stagnation-sweeps .
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the registry and the build between image builds; the binaries are copied out
# of the cached target folder because it is not part of the layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bins -p coordinator -p worker \
 && cp target/release/coordinator target/release/worker /usr/local/bin/

FROM debian:bookworm-slim
# DejaVu: the fonts the report's PNG figures are drawn with (without fonts only SVGs are written).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /work --create-home sweeps
COPY --from=build /usr/local/bin/coordinator /usr/local/bin/worker /usr/local/bin/
COPY examples /examples
# A numeric user, so Kubernetes' runAsNonRoot can check it.
USER 10001
WORKDIR /work
ENTRYPOINT []
CMD ["coordinator", "--help"]
