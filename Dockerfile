# One image for every payplane service; the command picks one: `python -m checkout`,
# `python -m ledger`, `python -m console`, ... (deploy/k8s sets it per Deployment). The dev
# overlay also runs the Stripe emulator from it (`python -m stripe_emulator`).
#   docker build -t payplane:dev .
FROM python:3.11-slim AS build
WORKDIR /app
RUN python -m venv /venv
ENV PATH=/venv/bin:$PATH
# The lock pins every package with hashes (it carries the dev/bench extras too).
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
COPY protos ./protos
RUN mkdir gen && python -m grpc_tools.protoc -Iprotos --python_out=gen --pyi_out=gen \
        --grpc_python_out=gen $(find protos -name '*.proto')

FROM python:3.11-slim
WORKDIR /app
COPY --from=build /venv /venv
COPY --from=build /app/gen ./gen
COPY libs ./libs
COPY tools ./tools
COPY services ./services
ENV PATH=/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONPATH=/app/gen:/app/libs:/app/tools:/app/services/checkout:/app/services/billing:/app/services/payouts:/app/services/ledger:/app/services/console
# No root, nothing to write but mounted volumes (the manifests mount /tmp and /var/lib/payplane).
USER 10001:10001
EXPOSE 50051 8101
CMD ["python", "-m", "checkout"]
