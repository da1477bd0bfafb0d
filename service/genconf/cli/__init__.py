"""The `genconf` command: one module per command group over the client."""
