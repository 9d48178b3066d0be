# One image for every lessonplan worker role; docker-compose.yml picks the entry point.
FROM node:20-bookworm-slim

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

ENV NODE_ENV=production LESSONPLAN_LOG_FORMAT=json
# Workers shut down gracefully on SIGTERM (docker stop); give them the grace time.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "--import", "tsx"]
CMD ["src/workers/all-in-one.ts"]
