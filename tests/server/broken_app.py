"""An app module that fails to import, for the start-up error test."""

RATE = 1 / 0
