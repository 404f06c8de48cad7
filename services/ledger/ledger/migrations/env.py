from payplane.db import alembic_env

alembic_env()
