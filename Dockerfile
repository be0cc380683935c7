# syntax=docker/dockerfile:1
# eclor-edge container image. Build:   docker build -t eclor-edge .
# Run (see docs/operations.md, "Installers"):
#   docker run -d --name eclor-edge --restart=unless-stopped \
#     -v eclor-state:/var/lib/eclor-edge -v /srv/eclor/config:/etc/eclor-edge:ro \
#     --device /dev/ttyUSB0 --group-add dialout -p 1700:1700/udp eclor-edge
# Native modules are compiled for the build machine's architecture: build arm64 images on arm64
# (or with buildx and QEMU emulation, slowly).

# --- build: compile TypeScript and the native modules, install production dependencies only ---
FROM node:20-bookworm-slim AS build
# Toolchain for node-gyp (better-sqlite3, @serialport/bindings-cpp) and libsystemd for the
# optional sd-notify helper (unused in a container, built so the tree matches the .deb's).
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ pkg-config libsystemd-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
# Build tools only (tsc): --ignore-scripts, the native modules are compiled by pack-install.sh.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
ENV PREFIX=/opt/eclor-edge
# packaging-test: the next RUN is executed verbatim by test/integration/packaging-install.test.ts
RUN bash scripts/pack-install.sh "$PREFIX" && "$PREFIX/dist/agent/main.js" --version

# --- runtime: Node, tini, the installed tree; no compiler, no dev dependencies ---------------
FROM node:20-bookworm-slim
# tini as PID 1: forwards SIGTERM to the agent (so it flushes the store) and reaps children.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# The same system user as the .deb, in dialout for serial devices passed with --device.
RUN groupadd --system eclor-edge \
 && useradd --system --gid eclor-edge --groups dialout --home-dir /var/lib/eclor-edge \
      --no-create-home --shell /usr/sbin/nologin eclor-edge \
 && install -d -o eclor-edge -g eclor-edge -m 0750 /var/lib/eclor-edge /run/eclor-edge \
 && install -d -o root -g eclor-edge -m 0750 /etc/eclor-edge
COPY --from=build /opt/eclor-edge /usr/lib/eclor-edge
COPY --chown=root:eclor-edge --chmod=0640 packaging/deb/config.yaml /etc/eclor-edge/config.yaml
RUN ln -s /usr/lib/eclor-edge/dist/agent/main.js /usr/local/bin/eclor-edge
ENV NODE_ENV=production
USER eclor-edge
WORKDIR /var/lib/eclor-edge
# State (the SQLite store) must outlive the container; config is usually a read-only bind mount.
VOLUME ["/var/lib/eclor-edge", "/etc/eclor-edge"]
# Semtech UDP packet forwarder (LoRaWAN driver), when configured.
EXPOSE 1700/udp
# Asks the running agent over its control socket (`eclor-edge status --json`, exit 0 = healthy).
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 \
  CMD ["eclor-edge", "status", "--json"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--", "eclor-edge"]
CMD ["run", "--config", "/etc/eclor-edge/config.yaml"]
