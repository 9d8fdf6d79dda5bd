"""Jobs: turning requests into finished files (and, with the server, the durable queue)."""
