"""SQL access: connections, the embedded server, the schema and one module of queries per table group."""
