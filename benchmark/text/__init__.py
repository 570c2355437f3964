"""Item-text embeddings: the encoder registry (encoders.py) and cached embedding matrices (embed.py)."""
