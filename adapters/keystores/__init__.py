"""Key store adapters: Fernet (platform secrets) and Vault transit (hvac)."""
