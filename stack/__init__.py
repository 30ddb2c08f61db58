"""The local stack launcher: Kafka (KRaft), Cassandra 5 and Redis on a machine without Docker."""
