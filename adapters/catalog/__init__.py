"""Loading the tier/provider catalog from TOML."""
