# One image with both binaries: `coordinator` and `worker`.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bins

FROM debian:bookworm-slim
COPY --from=build /src/target/release/coordinator /src/target/release/worker /usr/local/bin/
COPY examples /examples
ENTRYPOINT []
