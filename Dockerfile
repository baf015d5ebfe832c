# One image with both binaries, `coordinator` and `worker`, in /usr/local/bin, and the example
# sweeps in /examples. Used by docker-compose.yml and deploy/kubernetes:
#   docker build -t stagnation-sweeps .
# Plain Dockerfile syntax, no BuildKit features: it builds with the classic builder too
# (docker-compose 1.x, a Docker without buildx), and names no frontend image to pull.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bins -p coordinator -p worker \
 && cp target/release/coordinator target/release/worker /usr/local/bin/ \
 && rm -rf target

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
