# syntax=docker/dockerfile:1
#
# The ctbridge relay as a container image (docs/install.md, "Container").
#
#   docker build -t ctbridge-relay .
#   docker run -d --name ctbridge-relay -p 8080:8080 \
#     -v /srv/ctbridge/relay.yaml:/etc/ctbridge/relay.yaml:ro \
#     -e CTBRIDGE_JWT_SECRET="$(cat /srv/ctbridge/jwt-secret)" \
#     ctbridge-relay
#
# relay.yaml must listen on 0.0.0.0:8080 inside the container. The health
# check asks the admin listener's GET /readyz on 127.0.0.1:9090 (the default
# admin.listen); it runs inside the container, so loopback is right.

ARG NODE_IMAGE=node:24-bookworm-slim

# Build: compile TypeScript and pack the package as `npm pack` ships it.
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json README.md LICENSE ./
COPY bin ./bin
COPY src ./src
COPY relay ./relay
COPY agent ./agent
COPY cli ./cli
COPY schemas ./schemas
COPY deploy ./deploy
COPY docs ./docs
RUN npm pack --silent --pack-destination /tmp \
 && mv /tmp/ctbridge-*.tgz /tmp/ctbridge.tgz

# Runtime: the packed package with production dependencies only, owned by
# root and run as the image's unprivileged `node` user.
FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /opt/ctbridge
COPY --from=build /tmp/ctbridge.tgz /tmp/ctbridge.tgz
RUN npm install --omit=dev --no-audit --no-fund /tmp/ctbridge.tgz \
 && rm /tmp/ctbridge.tgz \
 && npm cache clean --force
USER node
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9090/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "/opt/ctbridge/node_modules/ctbridge/bin/ctbridge.js"]
CMD ["relay", "--config", "/etc/ctbridge/relay.yaml"]
