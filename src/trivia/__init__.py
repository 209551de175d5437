"""TRivia Stack."""
