"""Team-written samples of the 13 sets in their official formats (see README.md here)."""
