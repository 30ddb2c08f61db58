# The worker and API image for docker-compose.yml. Installed in place (editable) so the code finds
# topology.yaml and schemas/ beside it, as in a checkout.
FROM python:3.11-slim
WORKDIR /app
RUN useradd --create-home --uid 10001 starling
COPY pyproject.toml README.md topology.yaml ./
COPY schemas ./schemas
COPY pipeline ./pipeline
COPY adapters ./adapters
COPY agents ./agents
COPY api ./api
COPY stack ./stack
COPY starling ./starling
RUN pip install --no-cache-dir -e . && chown -R starling /app
USER starling
ENTRYPOINT ["starling"]
