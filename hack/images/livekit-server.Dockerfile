# LiveKit server for the local node (manifests/dev/livekit.yaml): the binary the tests already
# build from its Go module (hack/livekit/build.sh), on the Debian base (the container's command
# uses sh and sed). Build context: the directory holding livekit-server.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY livekit-server /usr/local/bin/livekit-server
USER 10001:10001
EXPOSE 7880 7881 7882/udp
ENTRYPOINT ["livekit-server"]
