"""The thin aiohttp API: serves materialized views from Redis and Cassandra."""
