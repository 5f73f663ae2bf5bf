# The controller image. Runs TypeScript through tsx: no build step.
FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY bin ./bin
COPY src ./src
COPY db ./db
COPY workflows ./workflows
COPY activities ./activities
COPY temporal ./temporal
COPY agent ./agent
COPY sim ./sim
COPY tsconfig.json ./
USER node
EXPOSE 8080
ENTRYPOINT ["node", "bin/e2epool.js"]
CMD ["serve"]
