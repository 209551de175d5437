# Prometheus for the rehearsal: Debian's `prometheus` binary on the local base image, standing in
# for prom/prometheus (which cannot be pulled here). Like that image, it runs as `nobody` with
# /prometheus owned by it, and reads its config from /etc/prometheus (compose.yaml mounts it).
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY prometheus /bin/prometheus
RUN mkdir -p /prometheus /etc/prometheus && chown nobody:nogroup /prometheus
USER nobody
WORKDIR /prometheus
ENTRYPOINT ["/bin/prometheus"]
