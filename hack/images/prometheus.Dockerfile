# Prometheus for the local node (manifests/dev/prometheus.yaml): the server built from the same
# pinned module as the tests' promtool, with Kubernetes service discovery
# (hack/tools/build-promtool.sh prometheus). Build context: the directory holding `prometheus`.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY prometheus /usr/local/bin/prometheus
USER 10001:10001
EXPOSE 9090
ENTRYPOINT ["prometheus"]
