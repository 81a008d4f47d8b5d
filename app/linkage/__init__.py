"""Front and back linkage (前方連携・後方連携): adapters, layouts, import batches."""
