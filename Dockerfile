# One image for every lessonplan process: each worker role, and the Temporal server and
# its Web UI (lessonplan temporal serve / temporal ui); docker-compose.yml picks the command.

# The Temporal server, its schema tool and the UI server, built from the same pinned Go
# modules as scripts/setup.sh builds for the tests (test/compose.test.ts checks the pins).
FROM golang:1.26-bookworm AS temporal
ARG TEMPORAL_SERVER_VERSION=1.32.2
ENV GOTOOLCHAIN=go1.27.3 GOFLAGS=-mod=mod
RUN GOBIN=/out go install "go.temporal.io/server/cmd/server@v${TEMPORAL_SERVER_VERSION}" "go.temporal.io/server/cmd/tools/sql@v${TEMPORAL_SERVER_VERSION}"
COPY tools/temporal-ui /src/temporal-ui
RUN cd /src/temporal-ui && go build -o /out/temporal-ui-server github.com/temporalio/ui-server/v2/cmd/server

FROM node:20-bookworm-slim
ARG TEMPORAL_SERVER_VERSION=1.32.2
ARG TEMPORAL_UI_VERSION=2.58.1

# apache2: a satellite's web server; haproxy: the load balancer's runtime API client side;
# rsync + openssh-client: the copy from the reference machine; postgresql-client: pg_dump
# for filing lessons (PostgreSQL 15, the server line lessonplan pins).
RUN apt-get update \
 && apt-get install -y --no-install-recommends apache2 haproxy rsync openssh-client postgresql-client ca-certificates \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/lessonplan
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY bin ./bin
COPY src ./src
COPY config ./config
COPY tsconfig.json ./
COPY tools/temporal-ui/go.mod ./tools/temporal-ui/go.mod
# Where src/stack/toolPaths.ts looks for them, by the versions package.json and tools/temporal-ui/go.mod pin.
COPY --from=temporal /out/server .tools/temporal-server/${TEMPORAL_SERVER_VERSION}/temporal-server
COPY --from=temporal /out/sql .tools/temporal-server/${TEMPORAL_SERVER_VERSION}/temporal-sql-tool
COPY --from=temporal /out/temporal-ui-server .tools/temporal-ui/${TEMPORAL_UI_VERSION}/temporal-ui-server

ENV NODE_ENV=production LESSONPLAN_LOG_FORMAT=json
# Workers shut down gracefully on SIGTERM (docker stop); give them the grace time.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "--import", "tsx"]
CMD ["src/workers/all-in-one.ts"]
