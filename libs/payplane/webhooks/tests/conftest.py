from payplane.natsd.testing import nats_client, nats_server, nats_url  # noqa: F401
