# cart-adapter: FHIR R4 adapter for CAR-T pathways, served by gunicorn as a non-root user.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    CART_ADAPTER_INSTANCE_PATH=/var/lib/cart-adapter

WORKDIR /app
COPY pyproject.toml README.md ./
COPY adapter ./adapter
COPY mappings ./mappings
COPY profiles ./profiles
RUN pip install '.[postgres]' \
    && useradd --system --home-dir /var/lib/cart-adapter --create-home cart-adapter

USER cart-adapter
EXPOSE 8080
VOLUME ["/var/lib/cart-adapter"]

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status == 200 else 1)"

# Runs the migrations, then gunicorn with two workers; set CART_ADAPTER_DATABASE_URL for PostgreSQL.
CMD ["cart-adapter", "serve", "--host", "0.0.0.0", "--port", "8080", "--workers", "2"]
