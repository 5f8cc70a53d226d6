"""Realistic (and, on request, dirty) REES46-style event files."""
