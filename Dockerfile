# syntax=docker/dockerfile:1
#
# walstream container image: `walstream replicate` by default; `docker run IMAGE restore ...` etc.
# for the other commands.
#
#   docker build -t walstream .
#   docker run --rm --read-only -v "$PWD/data:/data" -v "$PWD/walstream.yml:/etc/walstream.yml:ro" \
#       walstream replicate -config /etc/walstream.yml
#
# What must stay true (checked by scripts/lint-deploy.sh: hadolint, and the same
# `cargo ... --release --locked` run on exactly the files .dockerignore lets into the context):
# - the build runs `cargo build --release --locked`, so a Cargo.lock out of step with Cargo.toml
#   fails the image build instead of resolving new versions;
# - the runtime image runs as the non-root user 65532:65532 (the numeric id lets Kubernetes'
#   runAsNonRoot verify it) and needs no writable path outside the mounted database volume, so it
#   works with a read-only root filesystem;
# - the runtime has CA certificates (object_store verifies TLS against the system roots); the
#   Kubernetes preStop hook runs `walstream sync -wait` itself (see deploy/base), so no curl;
# - the runtime stage is distroless: no shell, no RUN in it (the lint refuses both).

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
# .dockerignore lets in only what the build needs (Cargo.toml, Cargo.lock, src/, tests/crash.rs,
# tests/crash_ltx.rs).
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked \
    && install -D -m 0755 target/release/walstream /out/walstream

# Distroless: glibc, libgcc, CA certificates, /etc/passwd with the nonroot user (65532) — and no
# shell, package manager or curl. walstream needs only libc, libm and libgcc_s (SQLite is
# compiled in; TLS is rustls), and every Kubernetes hook and probe runs walstream itself or is
# an httpGet.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
COPY --from=build /out/walstream /usr/local/bin/walstream
LABEL org.opencontainers.image.title="walstream" \
      org.opencontainers.image.description="SQLite WAL replication to object storage, compatible with Litestream v0.3.13"
USER 65532:65532
# Metrics, health and API port when the config sets `addr: ":9090"`.
EXPOSE 9090
ENTRYPOINT ["walstream"]
CMD ["replicate"]
