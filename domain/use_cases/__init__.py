"""domain/use_cases."""
