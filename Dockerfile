# memcluster's container image, built from source in two stages:
#
#   1. build: the Go toolchain compiles a static binary (CGO_ENABLED=0: no
#      libc, no loader, so it runs on an image with nothing else in it);
#   2. the image: that binary alone on distroless/static (CA certificates,
#      /etc/passwd with the "nonroot" user, time zones; no shell, no
#      package manager), run as that user, uid and gid 65532.
#
# make image builds it with podman, buildah or docker. Both stages come from
# registries; where they cannot be reached, make image-offline builds the
# same image FROM scratch over bin/memcluster (Dockerfile.scratch).
ARG GO_VERSION=1.26
FROM docker.io/library/golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# The modules first, so that a change of source reuses their layer.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# .git is left out of the context (.dockerignore), so -V names no commit
# here; make image-offline's binary, built by make build, does.
RUN CGO_ENABLED=0 go build -trimpath -o /out/memcluster ./cmd/memcluster

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/memcluster /usr/local/bin/memcluster
USER 65532:65532
# memcached's port; gossip, TCP and UDP; --metrics-addr (/metrics, /livez,
# /readyz).
EXPOSE 11211/tcp 7946/tcp 7946/udp 9150/tcp
# Every interface (a container's own network), gossip on 0.0.0.0:7946,
# advertising the container's IP; metrics and health on 9150. Arguments
# given to the container replace these, as CMD's do: give them all (see
# deploy/kubernetes/statefulset.yaml).
ENTRYPOINT ["/usr/local/bin/memcluster"]
CMD ["--listen=0.0.0.0", "--port=11211", "--metrics-addr=0.0.0.0:9150"]
