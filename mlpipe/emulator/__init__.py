"""The local AWS emulator: a patched moto server standing in for the three accounts."""
