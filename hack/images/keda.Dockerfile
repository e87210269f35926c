# KEDA for the local node (make install): its operator and its metrics API server, built from
# KEDA's Go module (hack/node/build-keda.sh), at the paths KEDA's own manifests run them from.
# One image for both: they share nearly every package. Build context: the directory holding
# `operator` and `adapter`.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY operator /keda
COPY adapter /keda-adapter
USER 10001:10001
ENTRYPOINT ["/keda"]
