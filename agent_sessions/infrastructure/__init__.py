"""Recorders and their index tables, one module per backend."""
