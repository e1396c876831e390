# Tributary single image: every service is a `tributary <command>` of the same build.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY . .
RUN npm ci --no-audit --no-fund && npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
COPY --from=build /app /app
ENV TRIBUTARY_NODE__DATA_DIR=/var/lib/tributary
VOLUME /var/lib/tributary
EXPOSE 1883 8083 8883 8084 18083
ENTRYPOINT ["node", "--max-semi-space-size=8", "services/cli/bin/tributary.js"]
CMD ["start"]
