"""MongoDB: the only package that writes, and the history it reads back."""
