# syntax=docker/dockerfile:1.7
# firedrill's image: the CLI, the embedded platform's demo application and front door
# (`firedrill sim app`, `firedrill sim front-door`) and the scheduled drills all run from it.

# Build: the locked dependency set, release profile.
FROM rust:1.95-slim-bookworm AS build
# openssl-sys is in the dependency tree (it needs pkg-config and the OpenSSL headers). Their
# versions are the ones of the pinned Debian release (bookworm, security updates only).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends pkg-config libssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin firedrill \
    && cp target/release/firedrill /firedrill

# Run: glibc and CA certificates, no shell, no package manager, user 65532 (nonroot).
FROM gcr.io/distroless/cc-debian12:nonroot@sha256:9dac0a79194e45a7da0158a9c6da57b217585af0786db3845d1f0ec1a0dd182f
LABEL org.opencontainers.image.title="firedrill" \
      org.opencontainers.image.description="Chaos and disaster-recovery drills as Gherkin scenarios" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /firedrill /usr/local/bin/firedrill
COPY drills /drills
USER 65532:65532
WORKDIR /home/nonroot
ENTRYPOINT ["/usr/local/bin/firedrill"]
CMD ["--help"]
