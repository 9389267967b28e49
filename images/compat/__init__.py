"""Compatibility layers for the systems Imago replaces: one package per legacy system."""
