#!/usr/bin/env sh
# Writes compose/.env with fresh random passwords for the compose layout's
# NATS users (nodes, API clients, routes). Run once before `docker compose up`.
set -eu
cd "$(dirname "$0")"
if [ -f .env ]; then echo "compose/.env exists; remove it to make new secrets" >&2; exit 1; fi
rand() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }
umask 077
cat > .env <<EOT
NATS_NODE_PASSWORD=$(rand)
NATS_API_PASSWORD=$(rand)
NATS_ROUTE_PASSWORD=$(rand)
EOT
echo "wrote compose/.env"
