# syntax=docker/dockerfile:1
# One image definition, two targets: `api` and `worker` (docker-compose.yml
# builds both). The TypeScript runs as is, through tsx: there is no build step.

FROM node:20.20-bookworm-slim AS deps
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
# The payload store (PAYLOAD_STORE_DIR) lives under /data; a volume mounted
# there starts out owned by the unprivileged user the services run as.
RUN mkdir -p /data/payloads && chown -R node:node /data
ENV DATA_DIR=/data PAYLOAD_STORE_DIR=/data/payloads

FROM deps AS api
COPY . .
USER node
EXPOSE 3000
CMD ["npm", "run", "api"]

FROM deps AS worker
# bubblewrap is the local sandbox of dyno_run_command and code_exec_* when no
# Heroku app is used (TOOL_SANDBOX), python3-seccomp compiles its seccomp
# filter; the interpreters are what code_exec_* runs.
RUN apt-get update \
  && apt-get install -y --no-install-recommends bubblewrap python3-seccomp ca-certificates python3 ruby golang-go \
  && rm -rf /var/lib/apt/lists/*
COPY . .
# The worker stays root: it makes a cgroup for each sandboxed call (README
# "Security"), and starts every call as nobody.
CMD ["npm", "run", "worker"]
