"""Stores ``ragops migrate`` reads from: one module per kind, behind one interface."""
