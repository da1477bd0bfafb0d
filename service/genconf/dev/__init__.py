"""Development tools: the embedded mongod, the demo model, protogen, healthcheck."""
