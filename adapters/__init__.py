"""Adapters from the core's small ports to real Kafka, Cassandra and Redis clients."""
