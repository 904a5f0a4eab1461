"""Application layer: the store service, its port and the factory."""
