"""The voice-of-the-customer part of ``seed_demo`` (filled below)."""
