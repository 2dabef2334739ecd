# syntax=docker/dockerfile:1
# cvat-warden image: multi-stage, production dependencies only, non-root.
# Build:  docker build -t ghcr.io/cvat-warden/cvat-warden:0.1.0 .
# Run:    deploy/docker-compose.cvat-warden.yml (joins CVAT's compose project) or
#         deploy/kubernetes/ (beside CVAT's Helm release); see the README.

# Base image pinned by digest, so a rebuild gets the very same Node and Debian layers:
#   node:24-bookworm-slim (Node 24.18.0 when pinned; Node 24 is the Active LTS, 20 reached
#   its end of life in April 2026). Bump the tag and the digest together, deliberately.
# The digest is the one public Dockerfiles pin for that tag (it could not be checked
# against Docker Hub from the build machines, which have no registry access): verify it
# with `docker buildx imagetools inspect node:24-bookworm-slim` when you bump it.
ARG NODE_IMAGE=node:24-bookworm-slim@sha256:6f7b03f7c2c8e2e784dcf9295400527b9b1270fd37b7e9a7285cf83b6951452d

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npm run build

# Production dependencies only, installed here so that the runtime stage needs no npm.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM ${NODE_IMAGE} AS runtime
# Keep VERSION equal to package.json's version (test/dockerfile.test.ts checks it).
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="cvat-warden" \
      org.opencontainers.image.description="Keeps a CVAT server's chunk cache warm and guards the share files its tasks read." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/cvat-warden/cvat-warden" \
      org.opencontainers.image.url="https://github.com/cvat-warden/cvat-warden" \
      org.opencontainers.image.documentation="https://github.com/cvat-warden/cvat-warden#readme" \
      org.opencontainers.image.licenses="MIT"
ENV NODE_ENV=production \
    CVAT_WARDEN_STATE_DIR=/var/lib/cvat-warden \
    CVAT_SHARE_DIR=/home/django/share \
    CVAT_WARDEN_LISTEN=0.0.0.0:9464
WORKDIR /app
# No package manager in the image that runs: nothing here installs anything at run time.
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack /opt/yarn-* \
      /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack /usr/local/bin/yarn /usr/local/bin/yarnpkg
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY grafana ./grafana
COPY LICENSE ./
# The node image ships an unprivileged "node" user (uid 1000); the state dir is its own.
RUN mkdir -p /var/lib/cvat-warden && chown node:node /var/lib/cvat-warden
USER node
VOLUME ["/var/lib/cvat-warden"]
EXPOSE 9464
# Exec form, no shell and no curl in the image: node asks /healthz itself, at the address
# CVAT_WARDEN_LISTEN says the service listens on (dist/healthcheck.js; 0.0.0.0 → loopback).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "/app/dist/healthcheck.js"]
# node as PID 1 does not reap zombies; the CLI spawns none, and it handles SIGTERM itself.
# Use `docker run --init` (or `init: true` in compose) if you add anything that forks.
CMD ["node", "/app/dist/cli.js", "run"]
