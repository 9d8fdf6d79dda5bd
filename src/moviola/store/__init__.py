"""Storage: the database (jobs, keys, webhook outbox) and the blob folder."""
