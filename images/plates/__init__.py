"""Plates: finding and covering them, plate tasks, their delivery, review and expiry."""
