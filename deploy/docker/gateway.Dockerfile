# The Tritone gateway: python slim, non-root, no compiler, no torch.
#   docker build -f deploy/docker/gateway.Dockerfile -t registry.example.com/tritone/gateway:0.1.0 .
# Every install step is in install-gateway.sh, which CI runs too (tests/unit/deploy); every
# package comes pinned and hashed from locks/build.txt and locks/gateway.txt (`make lock`).
FROM python:3.11.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml setup.py README.md /src/
COPY locks/build.txt locks/gateway.txt /src/locks/
COPY protos /src/protos
COPY tools /src/tools
COPY client_sdk /src/client_sdk
COPY server /src/server
COPY offline /src/offline
COPY deploy/docker/install-gateway.sh /src/deploy/docker/install-gateway.sh
RUN sh /src/deploy/docker/install-gateway.sh /src /opt/tritone

FROM python:3.11.11-slim-bookworm
RUN groupadd --gid 10001 tritone && useradd --uid 10001 --gid 10001 --no-create-home tritone
COPY --from=build /opt/tritone /opt/tritone
ENV PATH=/opt/tritone/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 10001:10001
# gRPC API, HTTP API, plaintext health (probes), metrics.
EXPOSE 50051 8080 8081 9090
ENTRYPOINT ["python", "-m", "tritone_server"]
