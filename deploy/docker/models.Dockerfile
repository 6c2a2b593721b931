# The model image: model_repository/ for Triton's init container ("model as image"), so the
# official nvcr.io/nvidia/tritonserver image runs unchanged.
#   docker build -f deploy/docker/models.Dockerfile -t registry.example.com/tritone/models:0.1.0 .
# Every install step is in install-models.sh, which CI runs too (tests/unit/deploy).
FROM busybox:1.37.0 AS build
COPY model_repository /src/model_repository
COPY deploy/docker/install-models.sh /src/deploy/docker/install-models.sh
RUN sh /src/deploy/docker/install-models.sh /src/model_repository /models

FROM busybox:1.37.0
COPY --from=build /models /models
USER 65534:65534
