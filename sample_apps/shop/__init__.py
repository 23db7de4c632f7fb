"""A small shop API, each flaw as a flawed endpoint beside its corrected twin (see ../manifest.toml)."""
