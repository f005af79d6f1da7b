"""A deliberately broken endpoint, served only to prove that ``scripts/api_fuzz.py`` fails on it."""
