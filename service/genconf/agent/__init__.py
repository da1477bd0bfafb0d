"""The reference unit agent (`genconf agent`)."""
