# syntax=docker/dockerfile:1
# cvat-warden image: multi-stage, production dependencies only, non-root.
# Build:  docker build -t ghcr.io/cvat-warden/cvat-warden:0.1.0 .
# Run:    deploy/docker-compose.cvat-warden.yml (joins CVAT's compose project) or
#         deploy/kubernetes/ (beside CVAT's Helm release); see the README.

ARG NODE_VERSION=24

FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npm run build

FROM node:${NODE_VERSION}-bookworm-slim AS runtime
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
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY grafana ./grafana
COPY LICENSE ./
# The node image ships an unprivileged "node" user (uid 1000); the state dir is its own.
RUN mkdir -p /var/lib/cvat-warden && chown node:node /var/lib/cvat-warden
USER node
VOLUME ["/var/lib/cvat-warden"]
EXPOSE 9464
# Exec form, no shell and no curl in the image: node asks /healthz itself.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9464/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# node as PID 1 does not reap zombies; the CLI spawns none, and it handles SIGTERM itself.
# Use `docker run --init` (or `init: true` in compose) if you add anything that forks.
CMD ["node", "/app/dist/cli.js", "run"]
