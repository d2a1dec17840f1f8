# signoff as a container: `signoff serve` on port 3000 (see compose.yaml for two replicas
# on PostgreSQL behind a load balancer).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY graphs ./graphs
RUN pip install --no-cache-dir .
ENV HOST=0.0.0.0 PORT=3000
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:3000/readyz').status != 200)"
CMD ["signoff", "serve"]
